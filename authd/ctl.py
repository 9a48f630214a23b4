"""``authctl``: the operator's and backend's command line for authd.

Who you are comes from your client certificate (``--identity NAME`` picks ``NAME.pem`` and
``NAME.key`` from the PKI directory, default ``$AUTHD_DATA_DIR/pki`` or ``./authd-data/pki``),
or, against a daemon in the insecure development mode, from ``--insecure --institution X
--role Y``. Each feature adds its own commands (``authctl otp --help``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from authd.client import dev_channel, identity_channel

# Modules with ``add_commands(sub: argparse._SubParsersAction) -> None``.
COMMANDS: list[str] = [
    "authd.system.cli",
    "authd.otp.cli",
]


@dataclass
class Ctl:
    """What a command gets: a channel to authd and output helpers."""

    channel: grpc.Channel
    json: bool

    def show(self, message: Message, render: Callable[[Any], list[str]] | None = None) -> None:
        if self.json or render is None:
            print(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                            ensure_ascii=False))
        else:
            for line in render(message):
                print(line)


def _default_pki() -> Path:
    return Path(os.environ.get("AUTHD_DATA_DIR", "authd-data")) / "pki"


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    if args.insecure:
        if not args.institution or not args.role:
            raise SystemExit("authctl: --insecure needs --institution and --role")
        return dev_channel(args.addr, args.institution, args.role, args.subject)
    if not args.identity:
        raise SystemExit("authctl: say who you are: --identity NAME (a certificate in "
                         f"{args.pki}), or --insecure --institution X --role Y")
    pki = Path(args.pki)
    for name in ("ca.pem", f"{args.identity}.pem", f"{args.identity}.key"):
        if not (pki / name).exists():
            raise SystemExit(f"authctl: {pki / name} not found")
    return identity_channel(args.addr, pki, args.identity)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default=os.environ.get("AUTHCTL_ADDR", "localhost:50051"),
                        help="authd address (default localhost:50051, or $AUTHCTL_ADDR)")
    parser.add_argument("--identity", default=os.environ.get("AUTHCTL_IDENTITY"),
                        help="client certificate name in the PKI directory ($AUTHCTL_IDENTITY)")
    parser.add_argument("--pki", default=str(_default_pki()), help="PKI directory")
    parser.add_argument("--insecure", action="store_true",
                        help="development mode: plaintext, caller given below")
    parser.add_argument("--institution", help="(--insecure) institution code")
    parser.add_argument("--role", choices=["branch", "backend", "admin"],
                        help="(--insecure) role")
    parser.add_argument("--subject", default="authctl", help="(--insecure) terminal name")
    parser.add_argument("--json", action="store_true", help="print answers as JSON")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    channel = open_channel(args)
    ctl = Ctl(channel, args.json)
    try:
        result = args.run(ctl, args)
        return int(result or 0)
    except grpc.RpcError as err:
        code = err.code()
        print(f"authctl: {code.name if code else 'ERROR'}: {err.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
