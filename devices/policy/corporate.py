"""The corporate master rule (DOMAIN.md §3): a corporate customer with multi-level approval
uses another institution's OTP only when its master administrator (총괄관리자) registered it
at a branch; employees use the institution's own OTP.

Checked three times: when the OTP device is registered (``registration_refusal``: nothing is
written), when a customer is set up as corporate, or changed from personal to corporate,
with other institutions' devices registered for it already (``setup_refusal``), and at each
transfer decision (authd/policy: the role the backend names for the user who orders the
transfer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devices.policy.grades import CustomerKind

ONLINE = ("A corporate customer registers another institution's OTP at a branch, by its master "
          "administrator; online, it registers only this institution's own OTP.")
NOT_MASTER = ("Only the master administrator of a corporate customer registers another "
              "institution's OTP; employees use this institution's own OTP.")


def registration_refusal(kind: CustomerKind | None, issued_here: bool, *, at_branch: bool,
                         master_administrator: bool) -> str | None:
    """Why registering the OTP device for this customer is refused, or None when it may be.
    ``kind``: the customer's kind at the registering institution (None: a customer it has not
    set up, treated as personal); ``issued_here``: the device was enrolled by the registering
    institution."""
    if kind is not CustomerKind.CORPORATE or issued_here:
        return None
    if not at_branch:
        return ONLINE
    if not master_administrator:
        return NOT_MASTER
    return None


@dataclass(frozen=True)
class ForeignOtp:
    """Another institution's OTP device registered for the customer at this institution."""

    serial: str
    channel: str  # "branch" or "online"


def setup_refusal(foreign: Sequence[ForeignOtp], *, master_administrator: bool,
                  changing: bool = False) -> str | None:
    """Why a customer with ``foreign`` devices registered cannot be set up as corporate (or,
    ``changing``, be changed from personal to corporate), or None. Registered while the
    customer was not corporate, nobody checked the rule: one registered online breaks it
    (deregister it, then the master administrator registers it at a branch); one registered
    at a branch passes when the teller checked that the master administrator is here with it
    (``master_administrator``)."""
    online = [f.serial for f in foreign if f.channel != "branch"]
    branch = [f.serial for f in foreign if f.channel == "branch"]
    become = "change the customer to corporate" if changing else \
        "set the customer up as corporate"
    if online:
        return ("A corporate customer uses another institution's OTP only when its master "
                "administrator registered it at a branch, and this customer has such an OTP "
                f"registered online: {', '.join(online)}. Deregister it, {become}, then have "
                "the master administrator register it again at a branch (master "
                "administrator checked).")
    if branch and not master_administrator:
        return ("Only the master administrator of a corporate customer registers another "
                "institution's OTP, and this customer has such an OTP registered before it "
                f"was corporate: {', '.join(branch)}. "
                f"{become[0].upper() + become[1:]} with the master administrator checked "
                "when the master administrator is here with it, or deregister it first.")
    return None
