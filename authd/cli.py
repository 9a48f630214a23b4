"""``authd``: the daemon's command line (serve, dev-certs, migrate, prune-audit)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from authd import config as configmod
from authd import logs
from authd.settings import ConfigError
from devices.errors import AuthdError
from drivers.errors import DriverError


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
    # Whatever the daemon creates (store, keys, PINs, tokens, certificates) is its user's alone.
    os.umask(0o077)
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
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.fn(args))
    except Exception as exc:
        print(f"authd: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: Exception) -> str:
    """What stopped a command, in one line: the error's own words for the daemon's errors
    (configuration, store, keys, devices, files); for anything else, that it is unexpected
    (its traceback goes to the log at DEBUG)."""
    if isinstance(exc, ConfigError):
        return "configuration: " + "; ".join(exc.problems)
    if isinstance(exc, AuthdError | DriverError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        logging.getLogger("authd").debug("unexpected error", exc_info=exc)
        text = f"unexpected error ({type(exc).__name__}): {exc}"
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
