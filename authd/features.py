"""The features this daemon can serve, and the role each belongs to.

A node serves the features of its configured ``roles`` (default: both). The **center** role
holds the cross-institution state that institutions' backends call; the **branch** role drives
devices attached to this host. Every feature ``NAME`` has the same files: ``authd/NAME/
settings.py`` (``SETTINGS``: its ``[NAME]`` section) and ``authd/NAME/feature.py``
(``FEATURE``: a :class:`Feature`), and most have ``servicer.py``, ``convert.py``,
``service.py``, ``repository.py`` and ``cli.py`` (see README, "One shape per medium").

The contract: a feature is built from the application (its shared dependencies:
configuration, store, secrets, audit, health, and the features built before it) and its own
settings; it names the gRPC services it serves; it may start work once the server listens and
must release it on stop. Health is pushed by the feature through ``app.health``
(see :mod:`authd.health`).

    class OtpFeature(Feature[OtpSettings]):
        name = "otp"

        def __init__(self, app: App, settings: OtpSettings) -> None: ...   # build, no I/O
        def services(self) -> list[Service]: ...
        async def start(self) -> None: ...                               # after listening
        async def stop(self) -> None: ...                                # before the store closes
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from authd.app import App

CENTER = "center"
BRANCH = "branch"
ROLES = (BRANCH, CENTER)


@dataclass(frozen=True)
class FeatureRef:
    name: str
    roles: frozenset[str]


# In dependency order: a feature may use the features listed before it.
FEATURES: tuple[FeatureRef, ...] = (
    FeatureRef("system", frozenset(ROLES)),
    # The branch node's link to the center (serves nothing without ``[center] urls``).
    FeatureRef("center", frozenset({BRANCH})),
    FeatureRef("otp", frozenset({CENTER})),
    # Both roles: cards at the center, the printer and embosser at a branch.
    FeatureRef("security_card", frozenset(ROLES)),
    FeatureRef("customer", frozenset({CENTER})),
    FeatureRef("policy", frozenset({CENTER})),
    # Both roles: the devices at a branch, the reservations and records at the center.
    FeatureRef("hid_otp", frozenset(ROLES)),
    FeatureRef("smartcard", frozenset({BRANCH})),
    FeatureRef("token", frozenset({BRANCH})),
    # issues onto tokens and smartcards, and checks their signatures' certificates
    FeatureRef("certificate", frozenset(ROLES)),
)


def features_for(roles: Iterable[str]) -> list[str]:
    wanted = set(roles)
    return [ref.name for ref in FEATURES if ref.roles & wanted]


S = TypeVar("S")


@dataclass(frozen=True)
class Service:
    """One gRPC service of a feature: its full name and how to add its servicer."""

    name: str
    add: Callable[[Any, Any], None]  # the generated add_XServicer_to_server
    servicer: object

    @classmethod
    def of(cls, descriptor: Any, service: str, add: Callable[[Any, Any], None],
           servicer: object) -> Service:
        """``Service.of(otp_pb2.DESCRIPTOR, "OtpService", add_..., servicer)``."""
        return cls(descriptor.services_by_name[service].full_name, add, servicer)


class Feature(Generic[S]):
    """A medium (or the system area) of the daemon; see the module docstring."""

    name: ClassVar[str]
    # Its services' calls need the store: their health reports the condition ``store``
    # (authd/storage/watch.py), NOT_SERVING while the store does not answer.
    uses_store: ClassVar[bool] = False

    def __init__(self, app: App, settings: S) -> None:
        self.app = app
        self.settings = settings

    def services(self) -> Sequence[Service]:
        return ()

    async def start(self) -> None:
        """Begin background work (watchers, sweepers) once the server listens."""

    async def stop(self) -> None:
        """End background work; the store and secrets are still open."""
