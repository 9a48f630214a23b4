"""The corporate master rule (DOMAIN.md §3): a corporate customer with multi-level approval
uses another institution's OTP only when its master administrator (총괄관리자) registered it
at a branch; employees use the institution's own OTP.

Checked twice: when the OTP device is registered (``registration_refusal``: nothing is
written) and at each transfer decision (authd/policy: the role the backend names for the
user who orders the transfer).
"""

from __future__ import annotations

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
