"""``authd``: the daemon's command line (serve, dev-certs, migrate, prune-audit, config)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from authd import config as configmod
from authd import logs
from devices.errors import AuthdError


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.data_dir:
        out["data_dir"] = args.data_dir
    server: dict[str, Any] = {}
    if args.listen:
        server["listen"] = args.listen
    if args.insecure:
        server["insecure"] = True
    if server:
        out["server"] = server
    if args.store:
        out["store"] = {"url": args.store}
    return out


async def _serve(cfg: configmod.Config) -> None:
    from authd.server import start_server

    running = await start_server(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"authd listening on port {running.port}", flush=True)
    await stop.wait()
    await running.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config, overrides=_overrides(args))
    logs.setup(cfg.log_level)
    if cfg.server.processes > 1:
        from authd.workers import serve_workers

        return serve_workers(cfg, args.argv)
    asyncio.run(_serve(cfg))
    return 0


def cmd_dev_certs(args: argparse.Namespace) -> int:
    from authd import pki

    clients = [pki.ClientSpec.parse(c) for c in args.client] if args.client else None
    out = pki.create_dev_pki(Path(args.out), clients, tuple(args.host))
    print(f"development CA and certificates written to {out}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from authd.storage import migrate, open_database

    cfg = configmod.load(args.config, overrides=_overrides(args))
    db = open_database(cfg.store_url)
    try:
        applied = migrate(db)
    finally:
        db.close()
    print(f"applied migrations: {applied or 'none (up to date)'}")
    return 0


def cmd_prune_audit(args: argparse.Namespace) -> int:
    from authd.audit import AuditLog
    from authd.storage import migrate, open_database

    cfg = configmod.load(args.config, overrides=_overrides(args))
    db = open_database(cfg.store_url)
    try:
        migrate(db)
        removed = db.run(lambda tx: AuditLog().prune(tx))
    finally:
        db.close()
    print(f"removed {removed} audit record(s) past their retention time")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from authd.config_check import check

    problems = check(args.file, environ=None if args.env else {})
    for problem in problems:
        print(problem)
    if problems:
        print(f"authd: {len(problems)} problem(s) in {args.file}", file=sys.stderr)
        return 2
    print(f"{args.file}: configuration ok")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from authd.config_reference import reference_markdown, sample_toml

    print(sample_toml(args.sample) if args.sample else reference_markdown(), end="")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from authd import healthcheck

    return healthcheck.main(args.address, service=args.service, insecure=args.insecure,
                            ca=args.ca, cert=args.cert, key=args.key, timeout=args.timeout)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--data-dir", help="data directory (default ./authd-data)")
    p.add_argument("--listen", help="address:port to listen on (default 127.0.0.1:50051)")
    p.add_argument("--store", help="store URL (sqlite:///FILE or postgresql://...)")
    p.add_argument("--insecure", action="store_true",
                   help="development mode: no TLS, caller from metadata, loopback only")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the daemon")
    _common(p)
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("dev-certs", help="create a development CA, server and client certificates")
    p.add_argument("--out", required=True, help="directory for the certificates")
    p.add_argument("--client", action="append", default=[],
                   help="NAME:INSTITUTION:ROLE (repeatable; default: tellers and backends of "
                        "bank-a, bank-b, bank-c and an ops admin)")
    p.add_argument("--host", action="append", default=["localhost", "127.0.0.1"],
                   help="server host name or IP for the server certificate")
    p.set_defaults(fn=cmd_dev_certs)
    p = sub.add_parser("migrate", help="apply schema migrations to the store")
    _common(p)
    p.set_defaults(fn=cmd_migrate)
    p = sub.add_parser("prune-audit", help="delete audit records past their retention time "
                                           "(5 years, DOMAIN.md section 7); run it daily")
    _common(p)
    p.set_defaults(fn=cmd_prune_audit)
    p = sub.add_parser("config", help="check a configuration file, or print the reference")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    c = config_sub.add_parser("check", help="report every problem of FILE at once (exit 2)")
    c.add_argument("file", help="TOML configuration file")
    c.add_argument("--no-env", dest="env", action="store_false",
                   help="ignore AUTHD_* environment overrides")
    c.set_defaults(fn=cmd_config_check)
    c = config_sub.add_parser("reference", help="print the configuration reference (Markdown)")
    c.add_argument("--sample", choices=["branch", "center"],
                   help="print a commented sample file for a node of this role instead")
    c.set_defaults(fn=cmd_config_reference)
    p = sub.add_parser("health", help="ask a running node's gRPC health service (exit 0: "
                                      "serving)")
    p.add_argument("--address", default="127.0.0.1:50051", help="the node's address:port")
    p.add_argument("--service", default="", help="a service's full name (default: the node)")
    p.add_argument("--insecure", action="store_true", help="the node runs in development mode")
    p.add_argument("--ca", default="", help="CA of the node's server certificate (PEM)")
    p.add_argument("--cert", default="", help="the probe's client certificate (PEM)")
    p.add_argument("--key", default="", help="the probe's client key (PEM)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds")
    p.set_defaults(fn=cmd_health)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.fn(args))
    except AuthdError as exc:
        print(f"authd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
