"""``authd``: the daemon's command line (serve, dev-certs, migrate, prune-audit, audit, kek,
token, backup, restore, config, health)."""

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
    from authd.heap import freeze_startup
    from authd.server import start_server

    running = await start_server(cfg)
    freeze_startup()  # what the start built lives as long as the process: no full scans of it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"authd listening on port {running.port}", flush=True)
    await stop.wait()
    await running.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    from authd.interpreter import set_switch_interval

    # Whatever the daemon creates (store, keys, PINs, tokens, certificates) is its user's alone.
    os.umask(0o077)
    cfg = configmod.load(args.config, overrides=_overrides(args))
    logs.setup(cfg.log_level)
    set_switch_interval(cfg.server.switch_interval_ms)
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


def _store_command(fn_name: str) -> Any:
    """A command on the configured store, run by authd.audit.commands."""

    def run(args: argparse.Namespace) -> int:
        from authd.audit import commands

        cfg = configmod.load(args.config, overrides=_overrides(args))
        return int(getattr(commands, fn_name)(cfg, args))

    return run


def cmd_backup(args: argparse.Namespace) -> int:
    from authd import backup
    from authd.audit.commands import trusted_keys

    cfg = configmod.load(args.config, overrides=_overrides(args))
    if cfg.store_url.startswith(("postgresql://", "postgres://")):
        return _backup_dump(cfg, Path(args.out),
                            trusted_keys(cfg, cfg.audit, args.public_key or []))
    backup.sqlite_path(cfg)
    keys = trusted_keys(cfg, cfg.audit, args.public_key or [])
    result = backup.backup(cfg, Path(args.out), keys)
    meta = result.meta
    print(f"backup written to {result.path}: {meta['db_bytes']:,} bytes, sha256 "
          f"{meta['db_sha256']}, {meta['audit_records']:,} audit records")
    return _report_chain(result.report, "the store")


def _backup_dump(cfg: Any, out: Path, keys: Any) -> int:
    from authd import pg_backup

    result = pg_backup.backup_dump(cfg, out, keys)
    print(f"backup written to {result.path}: a pg_dump archive of database "
          f"{result.checked.database} (schema {result.checked.schema}), {result.size:,} bytes, "
          f"sha256 {result.sha256}, audit records up to {result.checked.audit_last_id}")
    return _report_chain(result.checked.report, "the backup")


def _report_chain(report: Any, what: str) -> int:
    if report is None:
        return 0
    if report.ok:
        print(f"audit chain of {what} verified: {report.records:,} sealed records, "
              f"{report.unsealed:,} not sealed yet")
        return 0
    from authd.audit.commands import render

    print(f"authd: the audit trail of {what} was tampered with:", file=sys.stderr)
    print("\n".join(render(report, what)), file=sys.stderr)
    return 1


def cmd_restore(args: argparse.Namespace) -> int:
    from authd import backup
    from authd.audit.commands import trusted_keys

    cfg = configmod.load(args.config, overrides=_overrides(args))
    settings = cfg.audit
    if cfg.store_url.startswith(("postgresql://", "postgres://")):
        return _restore_dump(cfg, args, trusted_keys(cfg, settings, args.public_key or []))
    target = backup.sqlite_path(cfg)
    keys = trusted_keys(cfg, settings, args.public_key or [])
    src = Path(args.input)
    if args.check:
        meta, report = backup.check(src, keys, target.parent if target.parent.exists()
                                    else Path.cwd())
        return _restore_checked(f"{src}: a sound backup of {meta.get('source')} taken "
                                f"{_when(float(meta.get('created_at', 0)))}", report,
                                "the backup")
    result = backup.restore(cfg, src, keys, replace=args.replace,
                            witness=settings.witness_path(cfg))
    return _restored(src, f"taken {_when(float(result.meta.get('created_at', 0)))}",
                     str(target), result.meta.get("audit_last_id"), "the backup",
                     result.resealed, result.current_key, None, result.witness_moved)


def _restore_checked(sound: str, report: Any, what: str) -> int:
    print(sound)
    return _report_chain(report, what)


def _restored(src: Path, taken: str, into: str, last_id: Any, what: str, resealed: int,
              current_key: int, kept_as: str | None, witness_moved: Path | None) -> int:
    """What ``authd restore`` did, the same lines for a SQLite backup and a pg_dump archive."""
    print(f"restored {src} ({taken}) into {into}: audit records up to {last_id}")
    if resealed:
        print(f"{resealed:,} sealed value(s) of {what} re-sealed under the store's "
              f"current key-encryption key {current_key}")
    if kept_as:
        print(f"the store as it was is kept as database {kept_as}: drop it "
              f"(DROP DATABASE {kept_as}) once the restored store serves")
    if witness_moved:
        print(f"the witness of the previous head was set aside: {witness_moved}")
    return 0


def _restore_dump(cfg: Any, args: argparse.Namespace, keys: Any) -> int:
    from authd import pg_backup

    src = Path(args.input)
    result = pg_backup.restore_dump(cfg, src, keys, replace=args.replace,
                                     witness=cfg.audit.witness_path(cfg), check_only=args.check)
    taken = f"taken {result.created}" if result.created else "of unknown date"
    if args.check:
        return _restore_checked(f"{src}: a sound dump of an authd store (schema "
                                f"{result.schema}), {taken}", result.report, "the dump")
    return _restored(src, taken, f"database {result.database}", result.audit_last_id,
                     "the dump", result.resealed, result.current_key, result.kept_as,
                     result.witness_moved)


def _when(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


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


def _audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit trail: verify, seal, head, public-key")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    p = asub.add_parser("verify", help="check every sealed record against the signed chain "
                                       "(exit 0 intact, 1 tampered, 2 not checkable)")
    _common(p)
    p.add_argument("--public-key", action="append", metavar="FILE",
                   help="trust this public key (PEM or DER; default: the configured key)")
    p.add_argument("--witness", metavar="FILE",
                   help="a head seen earlier (default: the node's audit-head.json, if any)")
    p.add_argument("--no-witness", action="store_true", help="do not compare with a witness")
    p.add_argument("--max-head-age", type=float, metavar="SECONDS",
                   help="a signed head older than this is a finding (a live store)")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(fn=_store_command("cmd_verify"))
    p = asub.add_parser("seal", help="seal what is not sealed yet (a stopped store)")
    _common(p)
    p.set_defaults(fn=_store_command("cmd_seal"))
    p = asub.add_parser("public-key", help="print the audit signing key's public key (PEM)")
    _common(p)
    p.set_defaults(fn=_store_command("cmd_public_key"))


def _kek_command(fn_name: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        from authd.kek import commands

        cfg = configmod.load(args.config, overrides=_overrides(args))
        logs.setup(cfg.log_level)
        return int(getattr(commands, fn_name)(cfg, args))

    return run


def _kek_commands(sub: Any) -> None:
    kek = sub.add_parser("kek", help="the key-encryption key: rotate, status, expire "
                                     "(docs/keys.md)")
    ksub = kek.add_subparsers(dest="kek_command", required=True)
    p = ksub.add_parser("rotate", help="a new key on the token, every sealed value moved under "
                                       "it, the old key destroyed; online, and run again to "
                                       "finish a rotation that was stopped")
    _common(p)
    p.add_argument("--batch-size", type=int, default=200, metavar="N",
                   help="sealed values moved per transaction (default 200)")
    p.set_defaults(fn=_kek_command("cmd_rotate"))
    p = ksub.add_parser("status", help="the store's keys, the last rotation, and how many "
                                       "sealed values each key holds")
    _common(p)
    p.set_defaults(fn=_kek_command("cmd_status"))
    p = ksub.add_parser("expire", help="destroy the retired keys whose [kek] keep_rotated_days "
                                       "have passed (backups taken before their rotation no "
                                       "longer open afterwards)")
    _common(p)
    p.add_argument("--key", type=int, metavar="N",
                   help="destroy retired key N now, whatever its retention")
    p.set_defaults(fn=_kek_command("cmd_expire"))


def _token_command(fn_name: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        from authd.token import commands

        cfg = configmod.load(args.config, overrides=_overrides(args))
        return int(getattr(commands, fn_name)(cfg, args))

    return run


def _token_commands(sub: Any) -> None:
    token = sub.add_parser("token", help="HSM tokens on this node: the daemon's count of wrong "
                                         "SO PINs (docs/token.md)")
    tsub = token.add_subparsers(dest="token_command", required=True)
    so_pin = tsub.add_parser("so-pin", help="the count of wrong SO PINs that locks UnblockPin")
    ssub = so_pin.add_subparsers(dest="so_pin_command", required=True)
    p = ssub.add_parser("status", help="how many wrong SO PINs are counted for SERIAL")
    _common(p)
    p.add_argument("serial", metavar="SERIAL", help="the token's serial")
    p.set_defaults(fn=_token_command("cmd_so_pin_status"))
    p = ssub.add_parser("reset", help="clear the count of SERIAL (audited; only after the "
                                      "security officer has shown the SO PIN is known, or "
                                      "the token was re-initialized)")
    _common(p)
    p.add_argument("serial", metavar="SERIAL", help="the token's serial")
    p.add_argument("--operator", required=True, help="who clears it (recorded)")
    p.add_argument("--reason", required=True, help="why (recorded)")
    p.set_defaults(fn=_token_command("cmd_so_pin_reset"))


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
                                           "(per record class, [audit.retention_years]); daily")
    _common(p)
    p.add_argument("--dry-run", action="store_true", help="only say how many would go")
    p.set_defaults(fn=_store_command("cmd_prune"))
    _audit_commands(sub)
    _kek_commands(sub)
    _token_commands(sub)
    p = sub.add_parser("backup", help="back up the store online into OUT (SQLite: a backup file; "
                       "PostgreSQL: a pg_dump archive; checked: "
                                      "integrity and audit chain)")
    _common(p)
    p.add_argument("out", metavar="OUT", help="the backup file to write (must not exist)")
    p.add_argument("--public-key", action="append", metavar="FILE",
                   help="trust this audit public key (default: the configured signing key)")
    p.set_defaults(fn=cmd_backup)
    p = sub.add_parser("restore", help="restore the store from a backup (SQLite) or a pg_dump "
                       "archive (PostgreSQL), re-sealed under the current key (daemons stopped)")
    _common(p)
    p.add_argument("input", metavar="IN", help="a file written by authd backup, or for a "
                   "PostgreSQL store a pg_dump archive (pg_dump --format=custom)")
    p.add_argument("--replace", action="store_true", help="overwrite an existing store")
    p.add_argument("--check", action="store_true", help="only check the backup")
    p.add_argument("--public-key", action="append", metavar="FILE",
                   help="trust this audit public key (default: the configured signing key)")
    p.set_defaults(fn=cmd_restore)
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
