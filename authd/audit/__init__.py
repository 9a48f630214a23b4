"""The audit trail: who did what to which object, when, with which outcome — sealed in a signed
hash chain, kept per record class, searchable, verifiable (docs/audit.md)."""

from authd.audit.log import AuditLog
from authd.audit.records import AuditRecord

__all__ = ["AuditLog", "AuditRecord"]
