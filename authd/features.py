"""The features this daemon can serve, and the role each belongs to.

A node serves the features of its configured ``roles`` (default: both). The **center** role
holds the cross-institution state that institutions' backends call; the **branch** role drives
devices attached to this host. Each module defines
``register(server: grpc.aio.Server, app: App) -> list[str]`` (the full names of the services it
added) and may define ``async def close(app: App) -> None``.
"""

from __future__ import annotations

from collections.abc import Iterable

CENTER = "center"
BRANCH = "branch"
ROLES = (BRANCH, CENTER)

FEATURES: list[tuple[str, frozenset[str]]] = [
    ("authd.system.feature", frozenset(ROLES)),
    ("authd.otp.feature", frozenset({CENTER})),
    ("authd.security_card.feature", frozenset({CENTER})),
    ("authd.hid_otp.feature", frozenset({BRANCH})),
    ("authd.smartcard.feature", frozenset({BRANCH})),
    ("authd.token.feature", frozenset({BRANCH})),
]


def features_for(roles: Iterable[str]) -> list[str]:
    wanted = set(roles)
    return [name for name, feature_roles in FEATURES if feature_roles & wanted]
