"""Bad input to SearchAudit / ExportAudit / ListAudit through a running daemon, on SQLite and
PostgreSQL: every field with empty, huge, NUL, non-finite and overflowing values. Each answer is
INVALID_ARGUMENT naming the field (the same on both stores, never INTERNAL), and the trail is
searched as before afterwards."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.audit import AuditLog
from authd.context import Caller, Role
from authd.errors import details_of
from authd.v1 import system_pb2 as pb
from authd.v1 import system_pb2_grpc
from tests.conftest import TestServer, make_config
from tests.pgcluster import PgCluster

F = pb.AuditFilter
S = pb.SearchAuditRequest
HUGE = "x" * 12_000  # within the request limit (16 KiB), past every field's
A_TELLER = Caller("bank-a", Role.BRANCH, "teller-a")

# (case, filter or request, the field the error names)
SEARCHES: list[tuple[str, S, str]] = [
    ("since NaN", S(filter=F(since=float("nan"))), "since"),
    ("since +inf", S(filter=F(since=float("inf"))), "since"),
    ("until -inf", S(filter=F(until=float("-inf"))), "until"),
    ("since negative", S(filter=F(since=-1)), "since"),
    ("until year 3 million", S(filter=F(until=1e14)), "until"),
    ("since 1e300", S(filter=F(since=1e300)), "since"),
    ("since after until", S(filter=F(since=10, until=5)), "since"),
    ("target NUL", S(filter=F(target="OTP\x00-1")), "target"),
    ("target newline", S(filter=F(target="OTP-1\n")), "target"),
    ("target 12 KB", S(filter=F(target=HUGE)), "target"),
    ("institution NUL", S(filter=F(institution="bank-a\x00")), "institution"),
    ("institution 129 chars", S(filter=F(institution="b" * 129)), "institution"),
    ("customer NUL", S(filter=F(institution="bank-a", customer="C\x00")), "customer"),
    ("customer without institution", S(filter=F(customer="CUST-1")), "customer"),
    ("action NUL", S(filter=F(actions=["otp.verify\x00"])), "actions"),
    ("action empty", S(filter=F(actions=[""])), "actions"),
    ("33 actions", S(filter=F(actions=["a"] * 33)), "actions"),
    ("outcome NUL", S(filter=F(outcomes=["\x00"])), "outcomes"),
    ("outcome line separator", S(filter=F(outcomes=["ok\u2028"])), "outcomes"),
    ("limit negative", S(limit=-1), ""),
    ("limit 2^31-1", S(limit=2**31 - 1), ""),
    ("page_token beyond int64", S(page_token="9" * 19), "page_token"),
    ("page_token superscript digit", S(page_token="\u00b2"), "page_token"),
    ("page_token Arabic-Indic digits", S(page_token="\u0661\u0662"), "page_token"),
    ("page_token negative", S(page_token="-5"), "page_token"),
    ("page_token 12 KB of digits", S(page_token="1" * 12_000), "page_token"),
]
EXPORTS: list[tuple[str, F]] = [
    ("until +inf", F(until=float("inf"))),
    ("since 1e300", F(since=1e300)),
    ("target NUL", F(target="\x00")),
    ("actions NUL", F(actions=["\x00"])),
]
LISTS: list[tuple[str, pb.ListAuditRequest]] = [
    ("target NUL", pb.ListAuditRequest(target="OTP-1\x00")),
    ("target empty", pb.ListAuditRequest(target="")),
    ("target 12 KB", pb.ListAuditRequest(target=HUGE)),
    ("limit negative", pb.ListAuditRequest(target="OTP-1", limit=-5)),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trail(request: pytest.FixtureRequest) -> Iterator[tuple[TestServer, Any]]:
    """One daemon per store for the whole matrix, with a few records in its trail."""
    root = Path(tempfile.mkdtemp(prefix="authd-audit-input-"))
    url = None
    cluster: PgCluster | None = None
    name = ""
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = cluster.create_database()
        url = cluster.url(name)
    srv = TestServer(make_config(root / "node", url))
    log = AuditLog(clock=time.time)
    for target in ("OTP-1", "OTP-1", "OTP-2"):
        srv.app.db.run(lambda tx, t=target: log.record(
            tx, action="otp.verify", target=t, outcome="accepted", caller=A_TELLER))
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin", "auditor"))
    try:
        yield srv, admin
    finally:
        srv.stop()
        if cluster is not None:
            cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(root, ignore_errors=True)


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "internal error" not in (err.value.details() or "")
    return err.value


def intact(admin: Any) -> None:
    """The trail answers a good search as before the bad ones."""
    found = admin.SearchAudit(S(filter=F(target="OTP-1"), oldest_first=True), timeout=30)
    assert [(e.target, e.outcome) for e in found.entries] == [("OTP-1", "accepted")] * 2


@pytest.mark.parametrize("case,request_,field", SEARCHES, ids=[c[0] for c in SEARCHES])
def test_a_bad_search_is_refused_naming_its_field(trail: tuple[TestServer, Any], case: str,
                                                  request_: S, field: str) -> None:
    _, admin = trail
    err = refused(lambda: admin.SearchAudit(request_, timeout=30))
    if field:
        assert details_of(err).field == field, err.details()
    intact(admin)


@pytest.mark.parametrize("case,filter_", EXPORTS, ids=[c[0] for c in EXPORTS])
def test_a_bad_export_is_refused(trail: tuple[TestServer, Any], case: str, filter_: F) -> None:
    _, admin = trail
    refused(lambda: list(admin.ExportAudit(pb.ExportAuditRequest(filter=filter_), timeout=30)))
    intact(admin)


@pytest.mark.parametrize("case,request_", LISTS, ids=[c[0] for c in LISTS])
def test_a_bad_list_is_refused(trail: tuple[TestServer, Any], case: str,
                               request_: pb.ListAuditRequest) -> None:
    _, admin = trail
    refused(lambda: admin.ListAudit(request_, timeout=30))
    intact(admin)


def test_absurd_but_valid_ranges_answer_empty_or_everything(
        trail: tuple[TestServer, Any]) -> None:
    _, admin = trail
    # the whole representable range, and a range long before any record
    everything = admin.SearchAudit(S(filter=F(since=1e-6, until=253402300799.0), limit=1000))
    assert len(everything.entries) == 3
    assert not admin.SearchAudit(S(filter=F(since=1, until=2))).entries
    injected = admin.SearchAudit(S(filter=F(target="' OR '1'='1", actions=["x' OR 1=1 --"])))
    assert not injected.entries
    assert not admin.SearchAudit(S(page_token="1")).entries  # nothing before record 1


def test_a_search_of_megabytes_is_refused_before_it_is_parsed(
        trail: tuple[TestServer, Any]) -> None:
    _, admin = trail
    with pytest.raises(grpc.RpcError) as err:
        admin.SearchAudit(S(filter=F(target="x" * 3_000_000)), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    intact(admin)
