"""authctl commands: whoami, info, audit."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from authd.v1 import system_pb2, system_pb2_grpc


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


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

    def _who(e: system_pb2.AuditEntry) -> str:
        """The terminal, and the teller it acted for when a branch node called."""
        return f"{e.subject}/{e.operator}" if e.operator else e.subject

    p = sub.add_parser("audit", help="the audit trail of one object (branch, admin)")
    p.add_argument("target", help="serial or object id")
    p.add_argument("--limit", type=int, default=50)

    def audit(ctl: Any, a: argparse.Namespace) -> None:
        resp = system_pb2_grpc.SystemServiceStub(ctl.channel).ListAudit(
            system_pb2.ListAuditRequest(target=a.target, limit=a.limit), timeout=a.timeout)
        ctl.show(resp, lambda m: [
            f"{_when(e.at)}  {e.institution:<10} {e.role:<8} {_who(e):<16} {e.action:<26} "
            f"{e.outcome:<14} {e.detail_json}" for e in reversed(m.entries)]
            or ["(no records)"])

    p.set_defaults(run=audit)
