"""The center link feature (branch role): a branch-only node with ``[center] urls`` reaches the
center cluster through it, and serves the center's whole services (the OTP center, the
transfer policy, the customers' media and branch registrations) by forwarding them. Features
with work on both sides (HID provisioning, card printing, token and smartcard registrations,
a certificate's security means) take the link with :func:`link_of`. A node that holds the
center role calls its features in process: it has no link.
"""

from __future__ import annotations

from authd.app import App
from authd.center.forward import forwarding_service
from authd.center.link import CenterLink
from authd.center.settings import CenterSettings
from authd.features import CENTER, Feature, Service
from authd.v1 import customer_pb2, otp_pb2, policy_pb2
from devices.errors import BadRequest

# Center services a branch node serves by forwarding every call: (proto file, service).
FORWARDED = ((otp_pb2.DESCRIPTOR, "OtpService"), (policy_pb2.DESCRIPTOR, "PolicyService"),
             (customer_pb2.DESCRIPTOR, "CustomerService"),
             (customer_pb2.DESCRIPTOR, "BranchRegistrationService"))


class CenterFeature(Feature[CenterSettings]):
    name = "center"

    def __init__(self, app: App, settings: CenterSettings) -> None:
        super().__init__(app, settings)
        self.link: CenterLink | None = None
        if settings.urls:
            if CENTER in app.config.roles:
                raise BadRequest("[center] urls is for branch-only nodes (roles = "
                                 "[\"branch\"]): a node with the center role holds the "
                                 "center's state itself")
            self.link = CenterLink(settings, app.health)

    def services(self) -> list[Service]:
        if self.link is None:
            return []
        return [forwarding_service(self.link, descriptor, service)
                for descriptor, service in FORWARDED]

    async def start(self) -> None:
        if self.link is not None:
            await self.link.start()

    async def stop(self) -> None:
        if self.link is not None:
            await self.link.close()


def link_of(app: App) -> CenterLink | None:
    """This node's link to the center; None when it holds the center's state itself (or
    has no center configured)."""
    feature = app.feature(CenterFeature)
    return feature.link if feature is not None else None


FEATURE = CenterFeature
