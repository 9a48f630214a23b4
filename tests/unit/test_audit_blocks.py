"""Audit chain blocks, record classes and the ``[audit]`` settings."""

from __future__ import annotations

import pytest

from authd import config as configmod
from authd.audit.blocks import Body, BodyError, block_hash
from authd.audit.records import canonical_of, encode_detail, leaf_of
from authd.audit.settings import YEAR, AuditSettings
from authd.settings import ConfigError, load_section


def test_body_round_trip_with_gaps_and_classes():
    ids = (5, 6, 7, 9, 12, 13)
    classes = ("approval", "approval", "default", "default", "approval", "error_correction")
    leaves = tuple(bytes([i]) * 16 for i in range(6))
    body = Body(ids, classes, leaves)
    assert Body.decode(body.encode()) == body
    empty = Body((), (), ())
    assert Body.decode(empty.encode()) == empty


@pytest.mark.parametrize("cut", [1, 5, -1, -17])
def test_a_damaged_body_is_an_error_not_a_crash(cut: int):
    raw = Body((1, 2), ("default", "default"), (b"a" * 16, b"b" * 16)).encode()
    with pytest.raises(BodyError):
        Body.decode(raw[:cut])


def test_block_hash_covers_every_header_field():
    base = dict(seq=1, first_id=1, last_id=10, count=10, at_min=1.0, at_max=2.0, at_hi=2.0,
                sealed_at=3.0, body_digest=b"d" * 32, prev_hash=bytes(32), key_id="k1")
    reference = block_hash(**base)  # type: ignore[arg-type]
    changes = dict(seq=2, first_id=2, last_id=11, count=9, at_min=1.5, at_max=2.5, at_hi=2.5,
                   sealed_at=4.0, body_digest=b"e" * 32, prev_hash=b"\x01" * 32, key_id="k2")
    for field, value in changes.items():
        assert block_hash(**{**base, field: value}) != reference, field  # type: ignore[arg-type]


def test_canonical_text_separates_fields_unambiguously():
    one = canonical_of(1, ("ab", "c"), None)
    two = canonical_of(1, ("a", "bc"), None)
    assert one != two and leaf_of(one) != leaf_of(two)
    assert canonical_of(1, ("a",), None) != canonical_of(1, ("a",), "")
    assert len(leaf_of(one)) == 16


def test_detail_encoding_is_compact_and_sorted():
    assert encode_detail(None) == "{}"
    assert encode_detail({"b": 1, "a": "한"}) == '{"a":"한","b":1}'
    assert encode_detail({"failures": 0}) == encode_detail({"failures": 0}) == '{"failures":0}'
    assert encode_detail({"list": [1, 2]}) == '{"list":[1,2]}'  # unhashable: not remembered


def test_record_classes_follow_domain_section_7():
    s = AuditSettings()
    assert s.classify("otp.verify", {"failures": 0}) == "approval"
    assert s.classify("otp.verify", {"failures": 10, "locked_now": True}) == "default"
    assert s.classify("otp.resync", {}) == "error_correction"
    assert s.classify("security_card.verify", {"amount_krw": 10_000}) == "small_transaction"
    assert s.classify("security_card.verify", {"amount_krw": 10_001}) == "approval"
    assert s.classify("otp.enroll", {}) == "default"
    assert s.classify_text("otp.verify", '{"failures":3}') == "approval"
    assert s.classify_text("otp.verify", '{"failures":10,"locked_now":true}') == "default"
    assert s.years("approval") == 1.0 and s.years("default") == 5.0
    cutoffs = s.cutoffs(100 * YEAR)
    assert cutoffs["approval"] == pytest.approx(99 * YEAR)
    assert cutoffs["default"] == pytest.approx(95 * YEAR)


def test_audit_settings_from_the_configuration():
    cfg = configmod.load(None, environ={}, overrides={"audit": {
        "retention_years": {"approval": 2}, "classes": {"otp.verify": "default"},
        "seal_interval": 0.5}})
    s = cfg.audit
    assert s.years("approval") == 2 and s.years("error_correction") == 1
    assert s.classify("otp.verify", {}) == "default" and s.seal_interval == 0.5
    for bad, message in [({"retention_years": {"forever": 1}}, "forever: unknown setting"),
                         ({"retention_years": {"default": 0}}, "at most 100 years"),
                         ({"retention_years": {"approval": "long"}}, "must be a number"),
                         ({"classes": {"otp.verify": "keep"}}, "unknown class"),
                         ({"seal_interval": 0}, "seal_interval"),
                         ({"heartbeat": 0.1}, "heartbeat"),
                         ({"colour": "red"}, "unknown setting"),
                         ({"classes": "approval"}, "must be a table")]:
        with pytest.raises(ConfigError, match=message):
            load_section(AuditSettings, "audit", bad)
