"""authctl commands: whoami, info, audit (show, search, export, head)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from authd.ctl import CommandError
from authd.v1 import system_pb2, system_pb2_grpc

CSV_FIELDS = ("id", "at", "time", "institution", "role", "subject", "action", "target",
              "outcome", "customer", "detail")
AUDIT_COMMANDS = ("show", "search", "export", "head")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> float:
    """ISO 8601 (``2025-03-01``, ``2025-03-01T09:00:00+09:00``; local time without a zone)
    or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time (ISO 8601, e.g. 2025-03-01T09:00, or epoch seconds)") \
            from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.timestamp()


class _AnyName(dict):  # type: ignore[type-arg]
    """Subcommand names where any word passes argparse's choice check (once all are added)."""

    permissive = False

    def __contains__(self, key: object) -> bool:
        return self.permissive or super().__contains__(key)


class _AuditCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """``authctl audit TARGET`` stays ``authctl audit show TARGET``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._names = _AnyName()
        self._name_parser_map = self._names
        self.choices = self._names

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        self._names.permissive = False
        try:
            return super().add_parser(name, **kwargs)
        finally:
            self._names.permissive = True

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values and not dict.__contains__(self._names, values[0]):
            values = ["show", *values]
        super().__call__(parser, namespace, values, option_string)


def _line(e: system_pb2.AuditEntry) -> str:
    customer = f" customer={e.customer}" if e.customer else ""
    return (f"{_when(e.at)}  #{e.id:<8} {e.institution:<10} {e.role:<8} {e.subject:<16} "
            f"{e.action:<26} {e.target:<16} {e.outcome:<14} {e.detail_json}{customer}")


def _filter(a: argparse.Namespace) -> system_pb2.AuditFilter:
    if a.f_since and a.f_until and a.f_since > a.f_until:
        raise CommandError("--since is after --until")
    return system_pb2.AuditFilter(
        institution=a.f_institution or "", customer=a.f_customer or "",
        target=a.f_target or "", since=a.f_since or 0.0, until=a.f_until or 0.0,
        outcomes=a.f_outcome or [], actions=a.f_action or [])


def _filter_options(p: argparse.ArgumentParser) -> None:
    # dest f_*: authctl's own --institution (the insecure mode's identity) stays untouched
    p.add_argument("--institution", dest="f_institution", metavar="INSTITUTION",
                   help="one institution (admin); others see their own only")
    p.add_argument("--customer", dest="f_customer", metavar="CUSTOMER",
                   help="the institution's customer reference")
    p.add_argument("--target", dest="f_target", metavar="TARGET",
                   help="a device or object: serial, card or token id")
    p.add_argument("--since", dest="f_since", metavar="TIME", type=parse_time,
                   help="from (ISO 8601 or epoch seconds)")
    p.add_argument("--until", dest="f_until", metavar="TIME", type=parse_time,
                   help="until (inclusive)")
    p.add_argument("--outcome", dest="f_outcome", metavar="OUTCOME", action="append",
                   help="an outcome (repeatable)")
    p.add_argument("--action", dest="f_action", metavar="ACTION", action="append",
                   help="an action, e.g. otp.verify (repeatable)")


def _row(e: system_pb2.AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "time": _iso(e.at), "institution": e.institution,
            "role": e.role, "subject": e.subject, "action": e.action, "target": e.target,
            "outcome": e.outcome, "customer": e.customer, "detail": e.detail_json}


def write_export(entries: Iterable[system_pb2.AuditEntry], fmt: str, out: TextIO) -> int:
    """Entries as JSON lines (detail as an object) or CSV (detail as JSON text)."""
    count = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
    for e in entries:
        row = _row(e)
        if writer is not None:
            writer.writerow(row)
        else:
            row["detail"] = json.loads(e.detail_json or "{}")
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def add_commands(sub: Any) -> None:
    p = sub.add_parser("whoami", help="who authd believes you are")
    p.set_defaults(run=lambda ctl, a: ctl.show(
        system_pb2_grpc.SystemServiceStub(ctl.channel).WhoAmI(
            system_pb2.WhoAmIRequest(), timeout=a.timeout),
        lambda m: [f"institution {m.institution}", f"role        {m.role}",
                   f"subject     {m.subject}"]))

    p = sub.add_parser("info", help="daemon version, store, key-encryption key, services")
    p.set_defaults(run=lambda ctl, a: ctl.show(
        system_pb2_grpc.SystemServiceStub(ctl.channel).GetInfo(
            system_pb2.GetInfoRequest(), timeout=a.timeout),
        lambda m: [f"authd {m.version}  store {m.store}  kek {m.kek}",
                   *[f"  service {s}" for s in m.services]]))

    audit = sub.add_parser(
        "audit", help="the audit trail: show TARGET (the default), search, export, head",
        description="authctl audit TARGET is authctl audit show TARGET.")
    asub = audit.add_subparsers(dest="audit_command", required=True, action=_AuditCommands)

    p = asub.add_parser("show", help="the newest records of one object (branch, admin)")
    p.add_argument("target", help="serial or object id")
    p.add_argument("--limit", type=int, default=50)

    def show(ctl: Any, a: argparse.Namespace) -> None:
        resp = system_pb2_grpc.SystemServiceStub(ctl.channel).ListAudit(
            system_pb2.ListAuditRequest(target=a.target, limit=a.limit), timeout=a.timeout)
        ctl.show(resp, lambda m: [_line(e) for e in reversed(m.entries)] or ["(no records)"])

    p.set_defaults(run=show)

    p = asub.add_parser("search", help="records matching a filter, newest first")
    _filter_options(p)
    p.add_argument("--limit", type=int, default=100, help="records per page (1..1000)")
    p.add_argument("--page-token", default="", help="continue after a previous page")
    p.add_argument("--oldest-first", action="store_true")

    def search(ctl: Any, a: argparse.Namespace) -> None:
        resp = system_pb2_grpc.SystemServiceStub(ctl.channel).SearchAudit(
            system_pb2.SearchAuditRequest(filter=_filter(a), limit=a.limit,
                                          page_token=a.page_token,
                                          oldest_first=a.oldest_first), timeout=a.timeout)
        ctl.show(resp, lambda m: ([_line(e) for e in m.entries] or ["(no records)"]) + (
            [f"(more: --page-token {m.next_page_token})"] if m.next_page_token else []))

    p.set_defaults(run=search)

    p = asub.add_parser("export", help="every record matching a filter, oldest first, as JSON "
                                       "lines or CSV (an audit, or a customer's request)")
    _filter_options(p)
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--out", default="-", help="file to write (default: standard output)")

    def export(ctl: Any, a: argparse.Namespace) -> None:
        stream = system_pb2_grpc.SystemServiceStub(ctl.channel).ExportAudit(
            system_pb2.ExportAuditRequest(filter=_filter(a)), timeout=max(a.timeout, 3600))
        if a.out == "-":
            count = write_export(stream, a.format, sys.stdout)
        else:
            path = Path(a.out)
            partial = path.with_name(f".{path.name}.partial")
            try:
                with partial.open("w", encoding="utf-8", newline="") as out:
                    count = write_export(stream, a.format, out)
                partial.replace(path)
            except OSError as exc:
                raise CommandError(f"cannot write {a.out}: {exc.strerror or exc}") from None
            finally:
                partial.unlink(missing_ok=True)
        print(f"exported {count} record(s)", file=sys.stderr)

    p.set_defaults(run=export)

    p = asub.add_parser("head", help="the chain's signed head and what is not sealed (admin)")

    def head(ctl: Any, a: argparse.Namespace) -> None:
        resp = system_pb2_grpc.SystemServiceStub(ctl.channel).GetAuditHead(
            system_pb2.GetAuditHeadRequest(), timeout=a.timeout)
        ctl.show(resp, lambda m: _head_lines(m))

    p.set_defaults(run=head)


def _head_lines(m: system_pb2.GetAuditHeadResponse) -> Sequence[str]:
    lines = [f"head: block {m.seq}, records up to {m.last_id}, sealed {_when(m.sealed_at)} "
             f"by key {m.key_id}", f"hash: {m.hash}"] if m.seq else ["nothing sealed yet"]
    if m.unsealed:
        lines.append(f"not sealed yet: {m.unsealed} record(s), the oldest from "
                     f"{_when(m.oldest_unsealed_at)}")
    return lines
