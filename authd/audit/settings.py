"""The ``[audit]`` configuration section: sealing, signing, retention per record class.

```toml
[audit]
seal_interval = 1.0          # seconds between sealing rounds (the window in which a fresh
                             # record is not yet covered by the chain)
heartbeat = 60.0             # a signed head at least this often, records or not
signing_key_label = "authd-audit"   # the key pair on the key-encryption-key token
signing_key_file = ""        # [kek] kind = "file": an Ed25519 key file
                             # (default DATA/audit-signing.key)
witness_file = ""            # the last head this node saw (default DATA/audit-head.json)
small_transaction_krw = 10000
clock_skew = 300.0           # time-range searches tolerate writers' clocks this far apart

[audit.retention_years]      # per record class (DOMAIN.md section 7, EFT art. 22)
default = 5
small_transaction = 1
approval = 1
error_correction = 1

[audit.classes]              # action -> class, over the built-in mapping
"otp.verify" = "default"
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from authd.config import Config
from devices.errors import InvalidArgument

SECTION = "audit"
YEAR = 365.25 * 24 * 3600

DEFAULT = "default"
SMALL_TRANSACTION = "small_transaction"
APPROVAL = "approval"
ERROR_CORRECTION = "error_correction"
CLASSES = (DEFAULT, SMALL_TRANSACTION, APPROVAL, ERROR_CORRECTION)

# DOMAIN.md section 7: records 5 years; small transactions, approvals, error corrections 1 year.
DEFAULT_RETENTION: Mapping[str, float] = MappingProxyType({
    DEFAULT: 5.0, SMALL_TRANSACTION: 1.0, APPROVAL: 1.0, ERROR_CORRECTION: 1.0})

# How authd's actions map onto those classes (docs/audit.md says why).
# Approvals: an authentication that approves one transaction the institution is about to run.
# Error corrections: putting a medium's own error right (a generator's clock or counter drift).
# Everything else (issuing, registering, locking, unlocking, loss reports, replacing, keys,
# certificates, PINs) is a record of the access medium itself and of access to it: 5 years.
BUILT_IN_CLASSES: Mapping[str, str] = MappingProxyType({
    "otp.verify": APPROVAL,
    "security_card.challenge": APPROVAL,
    "security_card.verify": APPROVAL,
    "smartcard.sign": APPROVAL,
    "otp.resync": ERROR_CORRECTION,
})


@dataclass(frozen=True)
class AuditSettings:
    seal_interval: float = 1.0
    heartbeat: float = 60.0
    signing_key_label: str = "authd-audit"
    signing_key_file: str = ""
    witness_file: str = ""
    small_transaction_krw: int = 10_000
    clock_skew: float = 300.0
    retention_years: Mapping[str, float] = field(default_factory=lambda: DEFAULT_RETENTION)
    classes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.05 <= self.seal_interval <= 3600:
            raise InvalidArgument("audit.seal_interval must be 0.05..3600 seconds")
        if not self.seal_interval <= self.heartbeat <= 86400:
            raise InvalidArgument("audit.heartbeat must be seal_interval..86400 seconds")
        if not 0 <= self.clock_skew <= 86400:
            raise InvalidArgument("audit.clock_skew must be 0..86400 seconds")
        if not self.signing_key_label:
            raise InvalidArgument("audit.signing_key_label must not be empty")
        unknown = sorted(set(self.retention_years) - set(CLASSES))
        if unknown:
            raise InvalidArgument(f"audit.retention_years: unknown class(es) {unknown}; "
                                  f"classes are {', '.join(CLASSES)}")
        for name, years in self.retention_years.items():
            if not isinstance(years, int | float) or isinstance(years, bool) or \
                    not 0 < years <= 100:
                raise InvalidArgument(f"audit.retention_years.{name} must be 0..100 years")
        bad = sorted(c for c in self.classes.values() if c not in CLASSES)
        if bad:
            raise InvalidArgument(f"audit.classes: unknown class(es) {bad}; "
                                  f"classes are {', '.join(CLASSES)}")

    def years(self, record_class: str) -> float:
        """Retention of a class: its own setting, else the default class's."""
        return float(self.retention_years.get(record_class,
                                              self.retention_years.get(DEFAULT, 5.0)))

    def cutoffs(self, now: float) -> dict[str, float]:
        """Per class: records older than this may go."""
        return {name: now - self.years(name) * YEAR for name in CLASSES}

    def classify(self, action: str, detail: Mapping[str, Any]) -> str:
        """The retention class of one record, from what it says (fixed when it is sealed)."""
        configured = self.classes.get(action)
        if configured is not None:
            return configured
        amount = detail.get("amount_krw")
        if isinstance(amount, int) and not isinstance(amount, bool) and \
                0 <= amount <= self.small_transaction_krw:
            return SMALL_TRANSACTION
        built_in = BUILT_IN_CLASSES.get(action, DEFAULT)
        if built_in == APPROVAL and detail.get("locked_now"):
            return DEFAULT  # this verification locked the medium: a record of the medium
        return built_in

    def classify_text(self, action: str, detail_text: str) -> str:
        """``classify`` on a record's stored detail, parsing it only when it can matter."""
        if action in self.classes:
            return self.classes[action]
        if "amount_krw" not in detail_text and "locked_now" not in detail_text:
            return BUILT_IN_CLASSES.get(action, DEFAULT)
        try:
            detail = json.loads(detail_text)
        except ValueError:
            detail = {}
        return self.classify(action, detail if isinstance(detail, dict) else {})

    def witness_path(self, config: Config) -> Path:
        return Path(self.witness_file) if self.witness_file else \
            config.data_dir / "audit-head.json"

    def signing_key_path(self, config: Config) -> Path:
        return Path(self.signing_key_file) if self.signing_key_file else \
            config.data_dir / "audit-signing.key"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> AuditSettings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(section) - known)
        if unknown:
            raise InvalidArgument(f"unknown setting(s) in [{SECTION}]: {', '.join(unknown)}")
        values = dict(section)
        for key in ("retention_years", "classes"):
            if key in values and not isinstance(values[key], Mapping):
                raise InvalidArgument(f"[{SECTION}] {key} must be a table")
        if "retention_years" in values:
            values["retention_years"] = MappingProxyType(
                {**DEFAULT_RETENTION, **values["retention_years"]})
        if "classes" in values:
            values["classes"] = MappingProxyType(dict(values["classes"]))
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgument(f"bad [{SECTION}] section: {exc}") from None

    @classmethod
    def of(cls, config: Config) -> AuditSettings:
        return cls.from_section(config.section(SECTION))
