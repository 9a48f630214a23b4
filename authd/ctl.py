"""``authctl``: the operator's and backend's command line for authd.

Who you are comes from your client certificate (``--identity NAME`` picks ``NAME.pem`` and
``NAME.key`` from the PKI directory, default ``$AUTHD_DATA_DIR/pki`` or ``./authd-data/pki``),
or, against a daemon in the insecure development mode, from ``--insecure --institution X
--role Y``. Each feature adds its own commands (``authctl otp --help``).

Exit status: 0 done; 1 authd refused the call (the status and its message are printed);
2 a mistake on the command line or in an input file; 3 authd answered, but with a refusal
(a wrong answer or PIN, a failed print, a device that does not identify).

PINs and other secrets are never command-line values: they are asked for on the terminal
(not echoed), or read one per line from standard input (``--pin-stdin``) or a file
(``--pin-file``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import importlib
import os
import sys
import warnings
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
    "authd.security_card.cli",
    "authd.policy.cli",
    "authd.hid_otp.cli",
    "authd.smartcard.cli",
    "authd.token.cli",
    "authd.customer.cli",
    "authd.certificate.cli",
]

EXIT_OK = 0
EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3


class CommandError(Exception):
    """A mistake on the command line or in a local input: printed, exit status 2."""


@dataclass
class Ctl:
    """What a command gets: a channel to authd and output helpers."""

    channel: grpc.Channel
    json: bool

    def show(self, message: Message, render: Callable[[Any], list[str]] | None = None) -> None:
        if self.json or render is None:
            # every field, defaults included, so scripts find the same keys every time
            print(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                            ensure_ascii=False,
                                            always_print_fields_with_no_presence=True))
        else:
            for line in render(message):
                print(line)


# --------------------------------------------------------------------------- shared helpers


def enum_label(enum: Any, value: int, prefix: str) -> str:
    """``SECURITY_CARD_STATE_ACTIVE`` -> ``active`` (an unknown number is shown as such)."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return f"unknown ({value})"
    return name.removeprefix(prefix).lower().replace("_", " ")


def when(ts: float) -> str:
    """Seconds since the epoch as local time; ``-`` for 0 (never)."""
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def parse_hex(text: str, what: str) -> bytes:
    """Hex digits, spaces and colons allowed between bytes."""
    cleaned = "".join(text.split()).replace(":", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CommandError(f"{what} must be hex digits (got {text!r})") from None


def read_input(path: str, what: str) -> bytes:
    """The bytes of ``path``, or of standard input for ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None


class _RefuseSecretValue(argparse.Action):
    """``--pin 123456``: refused with the reason, instead of a puzzling argparse message."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        flag = (option_string or "--pin").removeprefix("--")
        parser.error(f"{option_string} VALUE is refused: a secret on the command line stays in "
                     f"the shell history and the process list; type it when asked, or use "
                     f"--{flag}-stdin or --{flag}-file")


def add_secret_options(parser: argparse.ArgumentParser, flag: str = "pin",
                       what: str = "PIN") -> None:
    """``--FLAG-stdin`` and ``--FLAG-file``: where to read secrets instead of the terminal."""
    parser.add_argument(f"--{flag}", nargs="?", action=_RefuseSecretValue, help=argparse.SUPPRESS)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{flag}-stdin", action="store_true",
                       help=f"read the {what}(s) from standard input, one per line")
    group.add_argument(f"--{flag}-file", metavar="FILE",
                       help=f"read the {what}(s) from FILE, one per line")


def read_secrets(args: argparse.Namespace, names: list[str], flag: str = "pin",
                 confirm: tuple[str, ...] = ()) -> list[str]:
    """One secret per name, from ``--FLAG-stdin``, ``--FLAG-file`` or the terminal (not echoed;
    the names in ``confirm`` are asked twice). Never part of the command line."""
    attr = flag.replace("-", "_")
    lines: list[str] | None = None
    if getattr(args, f"{attr}_stdin", False):
        lines = sys.stdin.read().splitlines()
        source = "standard input"
    elif getattr(args, f"{attr}_file", None):
        path = getattr(args, f"{attr}_file")
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        source = path
    if lines is not None:
        if len(lines) < len(names):
            raise CommandError(f"{source} must hold {', '.join(names)}, one per line "
                               f"({len(names)} line(s), found {len(lines)})")
        values = lines[: len(names)]
    else:
        values = []
        for name in names:
            value = _ask(name, flag)
            if name in confirm and _ask(f"{name} again", flag) != value:
                raise CommandError(f"the two {name}s differ")
            values.append(value)
    for name, value in zip(names, values, strict=True):
        if not value:
            raise CommandError(f"the {name} is empty")
    return values


def _ask(prompt: str, flag: str) -> str:
    """Ask on the terminal without echo; refuse (rather than echo) when there is none."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(f"{prompt}: ")
        except getpass.GetPassWarning:
            raise CommandError(f"no terminal to ask for the {prompt} without echo: use "
                               f"--{flag}-stdin or --{flag}-file") from None
        except EOFError:
            raise CommandError(f"no {prompt} given") from None


def _default_pki() -> Path:
    return Path(os.environ.get("AUTHD_DATA_DIR", "authd-data")) / "pki"


CONNECT_SECONDS = 3.0


def _one_channel(args: argparse.Namespace, address: str) -> grpc.Channel:
    if args.insecure:
        return dev_channel(address, args.institution, args.role, args.subject)
    return identity_channel(address, Path(args.pki), args.identity)


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to authd. ``--addr`` may name several nodes (``a:50051,b:50051``): the first
    that accepts a connection within a few seconds is used. A DNS name with several records
    fails over inside gRPC."""
    if args.insecure:
        if not args.institution or not args.role:
            raise SystemExit("authctl: --insecure needs --institution and --role")
    else:
        if not args.identity:
            raise SystemExit("authctl: say who you are: --identity NAME (a certificate in "
                             f"{args.pki}), or --insecure --institution X --role Y")
        pki = Path(args.pki)
        for name in ("ca.pem", f"{args.identity}.pem", f"{args.identity}.key"):
            if not (pki / name).exists():
                raise SystemExit(f"authctl: {pki / name} not found")
    addresses = [a.strip() for a in args.addr.split(",") if a.strip()]
    if not addresses:
        raise SystemExit("authctl: --addr names no address")
    if len(addresses) == 1:
        return _one_channel(args, addresses[0])
    for address in addresses:
        channel = _one_channel(args, address)
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_SECONDS)
        except grpc.FutureTimeoutError:
            channel.close()
            print(f"authctl: {address} did not answer; trying the next", file=sys.stderr)
            continue
        return channel
    raise SystemExit(f"authctl: none of {', '.join(addresses)} answered within "
                     f"{CONNECT_SECONDS:g} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authctl", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default=os.environ.get("AUTHCTL_ADDR", "localhost:50051"),
                        help="authd address (default localhost:50051, or $AUTHCTL_ADDR); "
                             "several, comma-separated, are tried in order")
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
    except CommandError as err:
        print(f"authctl: {err}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as err:
        code = err.code()
        print(f"authctl: {code.name if code else 'ERROR'}: {err.details()}", file=sys.stderr)
        return EXIT_RPC_ERROR
    finally:
        channel.close()


if __name__ == "__main__":
    # ``python -m authd.ctl``: run the module the commands import (its CommandError), not
    # this ``__main__`` copy of it.
    from authd import ctl as _ctl

    sys.exit(_ctl.main())
