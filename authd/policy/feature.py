"""The transfer-authorisation feature: ``authd.v1.PolicyService`` at the center.

Decisions are committed in groups by the policy's own engine (``authd.otp.engine``), keyed by
customer, and verify OTP codes through the OTP feature and security-card answers through the
security-card feature in the same transaction. Its health follows the decision writers
(condition ``writer``). Other features reach the incident list through
``app.feature(PolicyFeature).service.check_device(tx, device)``.
"""

from __future__ import annotations

from authd.app import App
from authd.customer.feature import CustomerFeature
from authd.features import Feature, Service
from authd.otp.engine import GroupCommitEngine
from authd.otp.feature import OtpFeature
from authd.policy.media import CenterMedia
from authd.policy.service import Answered, PolicyService, TransferRequest
from authd.policy.servicer import PolicyServicer
from authd.policy.settings import PolicySettings
from authd.security_card.feature import SecurityCardFeature
from authd.v1 import policy_pb2, policy_pb2_grpc

SERVICE = policy_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name


class PolicyFeature(Feature[PolicySettings]):
    name = "policy"

    def __init__(self, app: App, settings: PolicySettings) -> None:
        super().__init__(app, settings)
        self.otp = app.feature(OtpFeature)
        cards = app.feature(SecurityCardFeature)
        media = CenterMedia(app.require(CustomerFeature).service)
        self.service = PolicyService(app.db, app.audit, settings, media, self.otp,
                                     cards.service if cards else None)
        writers = settings.writers or (1 if app.db.dialect == "sqlite" else 4)
        self.engine: GroupCommitEngine[TransferRequest, Answered] = GroupCommitEngine(
            app.db, self.service.decide, batch_max=settings.batch_max, writers=writers,
            name="policy")
        self.engine.on_change(self._report_writers)

    def _report_writers(self) -> None:
        self.app.health.report(SERVICE, "writer", self.engine.serving,
                               "a decision writer failed and is restarting")

    def services(self) -> list[Service]:
        servicer = PolicyServicer(self.app, self.service, self.engine, self.otp)
        return [Service.of(policy_pb2.DESCRIPTOR, "PolicyService",
                           policy_pb2_grpc.add_PolicyServiceServicer_to_server, servicer)]

    async def stop(self) -> None:
        await self.app.run_blocking(self.engine.close)


FEATURE = PolicyFeature
