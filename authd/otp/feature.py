"""The OTP center feature: its logic (``service``, an :class:`OtpService` over the rows of
``repository.py``), its verification engine and ``authd.v1.OtpService``. Other features reach
the center's logic as ``app.feature(OtpFeature).service`` (``.center`` is the same object).
The service's health follows the engine's verification writers (condition ``writer``)."""

from __future__ import annotations

import logging

from authd.app import App
from authd.certificate.settings import CertificateSettings
from authd.context import Caller
from authd.features import Feature, Service
from authd.otp import repository as repo
from authd.otp import stages
from authd.otp.engine import GroupCommitEngine, LoopCommitEngine, Many
from authd.otp.keys import VerificationKeys
from authd.otp.link import EMPTY_LINKED, EngineLink
from authd.otp.service import Job, OtpService, VerifyResult
from authd.otp.servicer import OtpServicer
from authd.otp.settings import OtpSettings
from authd.otp.signers import SignerTrust
from authd.otp.verifier import Verifier, count_verified
from authd.ratelimit import Rate, RateLimiter
from authd.storage import Tx
from authd.storage.database import Row, Statement
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.errors import BadRequest
from devices.otp.rules import Policy

log = logging.getLogger(__name__)

SERVICE = otp_pb2.DESCRIPTOR.services_by_name["OtpService"].full_name


def make_service(app: App, c: OtpSettings) -> OtpService:
    signers = c.pskc_certificates()
    trust = SignerTrust.configured(signers, c.pskc_signer_ca_certificates,
                                   c.pskc_signer_revocation,
                                   app.config.settings(CertificateSettings),
                                   max_age=c.pskc_signer_revocation_max_age)
    for warning in trust.warnings(c.pskc_signer_expiry_warning_days):
        log.warning(warning)
    return OtpService(app.secrets, app.audit, Policy(lockout_threshold=c.lockout_threshold,
                                                    drift_steps=c.drift_steps,
                                                    hotp_look_ahead=c.hotp_look_ahead),
                      pskc_signers=signers, pskc_signed_only=c.pskc_signed_only,
                      pskc_trust=trust,
                      keys=VerificationKeys(app.secrets, app.config.server.idempotency_seconds))


Engine = (GroupCommitEngine[Job, VerifyResult]
          | LoopCommitEngine[Job, VerifyResult])


def make_engine(app: App, settings: OtpSettings, center: OtpService, *,
                in_loop: bool | None = None) -> Engine:
    """The configured engine; ``in_loop=False`` forces writer threads (callers without a loop)."""
    writers = writers_of(app, settings)

    handle: Many[Job, VerifyResult] = Many(center.verify_many)

    kind = settings.engine
    if kind == "loop" and app.db.dialect != "sqlite":
        raise BadRequest("[otp] engine = 'loop' is for SQLite; PostgreSQL uses 'thread'")
    if (in_loop if in_loop is not None else kind == "loop"):
        return LoopCommitEngine(app.db, handle, batch_max=settings.batch_max,
                                queue_max=settings.queue_max)
    return GroupCommitEngine(app.db, handle, batch_max=settings.batch_max,
                             writers=writers, queue_max=settings.queue_max,
                             defer_sync=app.db.dialect == "sqlite")


def writers_of(app: App, settings: OtpSettings) -> int:
    return settings.writers or (1 if app.db.dialect == "sqlite" else 4)


class OtpFeature(Feature[OtpSettings]):
    name = "otp"
    uses_store = True

    def __init__(self, app: App, settings: OtpSettings) -> None:
        super().__init__(app, settings)
        if settings.stage_timings:
            stages.enable()
        self.service = make_service(app, settings)
        self.engine = make_engine(app, settings, self.service)
        self.engine.on_change(self._report_writers)
        # One per-institution limit on every code verified at this process: Verify,
        # VerifyBatch, VerifyStream and the codes other features verify through ``verify_in``.
        self.verify_limit = RateLimiter("otp.verify", "OTP verifications",
                                        Rate(settings.verify_per_second, settings.verify_burst))
        self.verifier = Verifier(self.engine, self.verify_limit, settings.batch_request_max,
                                 app.config.server.crash_points)
        self.link: EngineLink | None = None

    async def start(self) -> None:
        """Behind the native front end: serve its verifications on the engine link."""
        if self.app.run_dir is None:
            return
        if isinstance(self.engine, LoopCommitEngine):
            raise BadRequest("[otp] engine = 'loop' serves verifications on the event loop; "
                             "the native front end needs engine = 'thread'")
        path = self.app.run_dir / "engine.sock"
        s = self.settings
        self.link = EngineLink(path, self.verifier, empty_call=s.link_empty_call)
        self.app.front_args.extend([
            f"--engine={path}", f"--batch-max={s.batch_max}",
            f"--queue-max={s.queue_max * writers_of(self.app, s)}",
            f"--max-in-flight={s.max_in_flight}", f"--batch-request-max={s.batch_request_max}",
            f"--window={s.link_window}",
            *([f"--empty-linked={EMPTY_LINKED}"] if s.link_empty_call else [])])

    def verify_in(self, tx: Tx, *, serial: str, code: str, caller: Caller,
                  read: list[Row] | None = None) -> VerifyResult:
        """Verify ``code`` in another feature's transaction, with the center's rules: the
        shared lockout counter under the device's row lock, the same answer for a serial not
        registered at the caller's institution (no existence oracle), audited. The caller
        checks ``verify_limit`` first and counts the outcome once the transaction commits
        (``count``). Raises only before it writes. ``read``: the rows of
        ``verify_statement``, when the caller sent it earlier in ``tx`` with its own reads
        (the device row is locked from then on)."""
        return self.service.verify(tx, serial=serial, code=code, caller=caller, read=read)

    @staticmethod
    def verify_statement(tx: Tx, serial: str, institution: str) -> Statement:
        """The read (and row lock) of the device a verification starts with."""
        return repo.verification_statement(tx, serial, institution)

    @staticmethod
    def count(result: VerifyResult, institution: str) -> None:
        """Count a committed verification in the OTP metrics."""
        count_verified(result, institution)

    @property
    def center(self) -> OtpService:
        """The center's logic (the same as ``service``)."""
        return self.service

    def _report_writers(self) -> None:
        """From any thread: NOT_SERVING while a writer is down (its devices cannot be
        verified on this node)."""
        self.app.health.report(SERVICE, "writer", self.engine.serving,
                               "a verification writer failed and is restarting")

    def services(self) -> list[Service]:
        servicer = OtpServicer(self.app, self.settings, self.service, self.engine,
                               self.verifier)
        return [Service.of(otp_pb2.DESCRIPTOR, "OtpService",
                           otp_pb2_grpc.add_OtpServiceServicer_to_server, servicer)]

    async def stop(self) -> None:
        if self.link is not None:
            await self.app.run_blocking(self.link.close)
        await self.app.run_blocking(self.engine.close)


FEATURE = OtpFeature
