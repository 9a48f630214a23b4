"""The ``[audit]`` section: sealing, signing, retention per record class.

```toml
[audit]
seal_interval = 1.0          # seconds between sealing rounds
heartbeat = 60.0             # a signed head at least this often, records or not

[audit.retention_years]      # per record class (DOMAIN.md section 7, EFT art. 22)
default = 5
approval = 1

[audit.classes]              # action -> class, over the built-in mapping
"otp.verify" = "default"
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from authd.settings import setting

if TYPE_CHECKING:
    from authd.config import Config

YEAR = 365.25 * 24 * 3600

DEFAULT = "default"
SMALL_TRANSACTION = "small_transaction"
APPROVAL = "approval"
ERROR_CORRECTION = "error_correction"
CLASSES = (DEFAULT, SMALL_TRANSACTION, APPROVAL, ERROR_CORRECTION)

# How authd's actions map onto DOMAIN.md section 7's classes (docs/audit.md says why).
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
class RetentionYears:
    """``[audit.retention_years]``: years each record class is kept."""

    default: float = setting(5.0, "every record not in a class below (DOMAIN §7: 5 years)")
    small_transaction: float = setting(1.0, "records of transactions up to "
                                            "small_transaction_krw")
    approval: float = setting(1.0, "verifications that approve one transaction")
    error_correction: float = setting(1.0, "error corrections (an OTP generator's resync)")

    def problems(self) -> list[str]:
        return [f"{f.name} must be more than 0 and at most 100 years" for f in fields(self)
                if not 0 < getattr(self, f.name) <= 100]


@dataclass(frozen=True, eq=False)
class ActionClasses:
    """``[audit.classes]``: record class by action, over the built-in mapping. (A table with
    keys of the operator's choosing: the mapping is kept outside the dataclass fields.)"""

    def __init__(self, by_action: Mapping[str, str] | None = None) -> None:
        object.__setattr__(self, "_by_action", MappingProxyType(dict(by_action or {})))

    @classmethod
    def from_toml(cls, value: Any) -> ActionClasses:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table of action = class")
        bad = sorted(f"{k} = {v!r}" for k, v in value.items()
                     if not isinstance(v, str) or v not in CLASSES)
        if bad:
            raise ValueError(f"unknown class(es) {', '.join(bad)}; classes are "
                             f"{', '.join(CLASSES)}")
        return cls({str(k): str(v) for k, v in value.items()})

    def get(self, action: str) -> str | None:
        by_action: Mapping[str, str] = self._by_action  # type: ignore[attr-defined]
        return by_action.get(action)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionClasses) and \
            dict(self._by_action) == dict(other._by_action)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._by_action.items())))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"ActionClasses({dict(self._by_action)!r})"  # type: ignore[attr-defined]

    def __deepcopy__(self, memo: Any) -> ActionClasses:
        return self


@dataclass(frozen=True)
class AuditSettings:
    SECTION: ClassVar[str] = "audit"
    seal_interval: float = setting(1.0, "seconds between sealing rounds: how long a new record "
                                        "is not yet covered by the hash chain")
    heartbeat: float = setting(60.0, "a signed head at least this often, records or not "
                                     "(its age tells a live trail from a cut one)")
    signing_key_label: str = setting("authd-audit", "label of the signing key pair on the "
                                                    "key-encryption-key token")
    signing_key_file: str = setting("", "[kek] kind = 'file': the Ed25519 signing key file; "
                                        "empty: data_dir/audit-signing.key")
    witness_file: str = setting("", "where this node keeps the last signed head it saw; "
                                    "empty: data_dir/audit-head.json")
    small_transaction_krw: int = setting(10_000, "a record with detail amount_krw up to this "
                                                 "is a small transaction (DOMAIN §7)")
    clock_skew: float = setting(300.0, "seconds writers' clocks may differ (time-range "
                                       "searches; backdated records)")
    retention_years: RetentionYears = field(
        default_factory=RetentionYears, metadata={"doc": "years kept per record class"})
    classes: ActionClasses = field(
        default_factory=ActionClasses,
        metadata={"doc": "record class by action, e.g. \"otp.verify\" = \"default\" "
                         "(classes: " + ", ".join(CLASSES) + ")"})

    def problems(self) -> list[str]:
        out = []
        if not 0.05 <= self.seal_interval <= 3600:
            out.append("seal_interval must be 0.05..3600 seconds")
        if not self.seal_interval <= self.heartbeat <= 86400:
            out.append("heartbeat must be seal_interval..86400 seconds")
        if not 0 <= self.clock_skew <= 86400:
            out.append("clock_skew must be 0..86400 seconds")
        if not self.signing_key_label:
            out.append("signing_key_label must not be empty")
        if self.small_transaction_krw < 0:
            out.append("small_transaction_krw must not be negative")
        out.extend(f"retention_years {p}" for p in self.retention_years.problems())
        return out

    def years(self, record_class: str) -> float:
        """Retention of a class (the default class's for a name not known)."""
        if record_class in CLASSES:
            return float(getattr(self.retention_years, record_class))
        return float(self.retention_years.default)

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
        configured = self.classes.get(action)
        if configured is not None:
            return configured
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


SETTINGS = AuditSettings
