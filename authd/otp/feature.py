"""The OTP center feature: its logic (``service``, an :class:`OtpService` over the rows of
``repository.py``), its verification engine and ``authd.v1.OtpService``. Other features reach
the center's logic as ``app.feature(OtpFeature).service`` (``.center`` is the same object).
The service's health follows the engine's verification writers (condition ``writer``)."""

from __future__ import annotations

from authd import metrics
from authd.app import App
from authd.context import Caller
from authd.features import Feature, Service
from authd.otp import repository as repo
from authd.otp.engine import GroupCommitEngine, LoopCommitEngine
from authd.otp.service import OtpService, VerifyResult
from authd.otp.servicer import OtpServicer
from authd.otp.settings import OtpSettings
from authd.ratelimit import Rate, RateLimiter
from authd.storage import Tx
from authd.storage.database import Row, Statement
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.errors import BadRequest
from devices.otp.rules import Policy

SERVICE = otp_pb2.DESCRIPTOR.services_by_name["OtpService"].full_name


def make_service(app: App, c: OtpSettings) -> OtpService:
    return OtpService(app.secrets, app.audit, Policy(lockout_threshold=c.lockout_threshold,
                                                    drift_steps=c.drift_steps,
                                                    hotp_look_ahead=c.hotp_look_ahead))


Engine = (GroupCommitEngine[tuple[str, str, Caller], VerifyResult]
          | LoopCommitEngine[tuple[str, str, Caller], VerifyResult])


def make_engine(app: App, settings: OtpSettings, center: OtpService, *,
                in_loop: bool | None = None) -> Engine:
    """The configured engine; ``in_loop=False`` forces writer threads (callers without a loop)."""
    writers = settings.writers or (1 if app.db.dialect == "sqlite" else 4)

    def handle(tx: Tx, job: tuple[str, str, Caller]) -> VerifyResult:
        serial, code, caller = job
        return center.verify(tx, serial=serial, code=code, caller=caller)

    kind = settings.engine
    if kind == "loop" and app.db.dialect != "sqlite":
        raise BadRequest("[otp] engine = 'loop' is for SQLite; PostgreSQL uses 'thread'")
    if (in_loop if in_loop is not None else kind == "loop"):
        return LoopCommitEngine(app.db, handle, batch_max=settings.batch_max)
    return GroupCommitEngine(app.db, handle, batch_max=settings.batch_max,
                             writers=writers)


class OtpFeature(Feature[OtpSettings]):
    name = "otp"
    uses_store = True

    def __init__(self, app: App, settings: OtpSettings) -> None:
        super().__init__(app, settings)
        self.service = make_service(app, settings)
        self.engine = make_engine(app, settings, self.service)
        self.engine.on_change(self._report_writers)
        # One per-institution limit on every code verified at this process: Verify,
        # VerifyStream and the codes other features verify through ``verify_in``.
        self.verify_limit = RateLimiter("otp.verify", "OTP verifications",
                                        Rate(settings.verify_per_second, settings.verify_burst))

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
        metrics.OTP_VERIFICATIONS.labels(outcome=result.outcome.value,
                                         institution=institution).inc()

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
                               self.verify_limit)
        return [Service.of(otp_pb2.DESCRIPTOR, "OtpService",
                           otp_pb2_grpc.add_OtpServiceServicer_to_server, servicer)]

    async def stop(self) -> None:
        await self.app.run_blocking(self.engine.close)


FEATURE = OtpFeature
