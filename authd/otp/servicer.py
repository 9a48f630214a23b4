"""``authd.v1.OtpService``: validate, convert, call the center, convert back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import grpc

from authd import idempotency, validate
from authd.app import App
from authd.context import Caller, Role, require_role
from authd.otp.convert import (
    algorithm_from_pb,
    kind_from_pb,
    seed_file_to_pb,
    status_to_pb,
)
from authd.otp.engine import GroupCommitEngine, LoopCommitEngine
from authd.otp.keys import CALL_KEY
from authd.otp.service import REGISTRATION_REFUSED, Job, OtpService, VerifyResult
from authd.otp.settings import OtpSettings
from authd.otp.verifier import Admission, Verifier, answer, check_code, count_verified, refused
from authd.ratelimit import Rate, RateLimiter
from authd.storage import Tx
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.errors import BadRequest, LimitReached, NotPermitted
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind

T = TypeVar("T")
VERIFY_BATCH = "/authd.v1.OtpService/VerifyBatch"
VERIFY_STREAM = "/authd.v1.OtpService/VerifyStream"
STREAM_FRAMES_AHEAD = 64  # VerifyStream frames read before the oldest is answered
# A password a PBKDF2 key is derived from: no more than this many characters.
MAX_PASSWORD = 1024
# Warranty ends are seconds since the epoch, up to the end of year 9999.
MAX_TIME = 253_402_300_799.0


def _text(value: str, name: str, required: bool = False) -> str:
    return validate.text(value, name, required=required)


def _code(value: str, name: str = "code") -> str:
    return check_code(value, name)


def _parameters(p: otp_pb2.OtpParameters) -> None:
    """What the rules (``Params.check``) do not check: the counter must fit every store."""
    validate.bounded_int(p.counter, "parameters.counter")


Engine = (GroupCommitEngine[Job, VerifyResult]
          | LoopCommitEngine[Job, VerifyResult])
Pending = Future[VerifyResult] | asyncio.Future[VerifyResult]


def _count(institution: str, future: Pending) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    count_verified(future.result(), institution)


class OtpServicer(otp_pb2_grpc.OtpServiceServicer):
    def __init__(self, app: App, settings: OtpSettings, center: OtpService,
                 engine: Engine, verifier: Verifier) -> None:
        self.app = app
        self.settings = settings
        self.center = center
        self.engine = engine
        c = settings
        self.online_register_limit = RateLimiter(
            "otp.register.online", "online OTP registrations",
            Rate(c.online_register_per_second, c.online_register_burst))
        self.branch_register_limit = RateLimiter(
            "otp.register.branch", "OTP registrations at branches",
            Rate(c.branch_register_per_second, c.branch_register_burst))
        self.verifier = verifier
        self.admission = Admission(c.max_in_flight)

    async def _tx(self, fn: Callable[[Tx], T]) -> T:
        return await self.app.run_store(self.app.db.run, fn)

    def _status(self, device: Any) -> otp_pb2.DeviceStatus:
        return status_to_pb(device, self.center.attempts_left(device.failures))

    async def Enroll(self, request: otp_pb2.EnrollRequest,
                     context: grpc.aio.ServicerContext) -> otp_pb2.EnrollResponse:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        _text(request.operator_id, "operator_id", required=True)
        customer_id = validate.customer_ref(request.customer_id)
        p = request.parameters
        _parameters(p)
        validate.finite(request.warranty_until, "warranty_until", minimum=0, maximum=MAX_TIME)
        kind = kind_from_pb(p.kind)
        if kind is None:
            raise BadRequest("parameters.kind (TOTP or HOTP) is required")
        cfg = self.settings
        algorithm = algorithm_from_pb(p.algorithm, Algorithm(cfg.default_algorithm))
        enrolled = await self._tx(lambda tx: self.center.enroll(
            tx, serial=request.serial, seed=request.seed or None, kind=kind,
            digits=p.digits or cfg.default_digits, period=p.period_seconds or cfg.default_period,
            algorithm=algorithm or Algorithm.SHA1, counter=p.counter,
            warranty_until=request.warranty_until, caller=caller, customer_id=customer_id))
        return otp_pb2.EnrollResponse(device=self._status(enrolled.device),
                                      generated_seed=enrolled.generated_seed or b"",
                                      provisioning_uri=enrolled.provisioning_uri)

    async def Register(self, request: otp_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH, Role.BACKEND)
        if caller.role is Role.BRANCH:
            self.branch_register_limit.check(caller.institution)
            validate.serial(request.serial)
            _text(request.operator_id, "operator_id", required=True)
            customer_id = validate.customer_ref(request.customer_id)
            if request.code:
                raise BadRequest("a branch registers without a code (the teller checks "
                                      "the customer's ID and device in person)")
            device = await self._tx(lambda tx: self.center.register(
                tx, serial=request.serial, institution=caller.institution, caller=caller,
                customer_id=customer_id, master_administrator=request.master_administrator))
            return self._status(device)
        self.online_register_limit.check(caller.institution)
        validate.serial(request.serial)
        _text(request.operator_id, "operator_id")
        online_customer = validate.customer_ref(request.customer_id)
        if request.master_administrator:
            raise BadRequest("master_administrator is for a branch registration (the teller "
                             "checks the master administrator in person)",
                             field="master_administrator")
        code = validate.otp_code(request.code, "code (the device's current code, typed by the "
                                               "customer)")
        found = await self._tx(lambda tx: self.center.register_online(
            tx, serial=request.serial, code=code, caller=caller, customer_id=online_customer,
            strong_authentication=request.strong_authentication))
        if found is None:
            raise NotPermitted(REGISTRATION_REFUSED.format(serial=request.serial))
        return self._status(found)

    async def Deregister(self, request: otp_pb2.DeregisterRequest,
                         context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        operator = _text(request.operator_id, "operator_id", required=True)
        reason = _text(request.reason, "reason")
        device = await self._tx(lambda tx: self.center.deregister(
            tx, serial=request.serial, institution=caller.institution, caller=caller,
            operator=operator, reason=reason))
        return self._status(device)

    async def Verify(self, request: otp_pb2.VerifyRequest,
                     context: grpc.aio.ServicerContext) -> otp_pb2.VerifyResponse:
        caller = require_role(Role.BACKEND)
        named = idempotency.key_of(context.invocation_metadata())
        self.admission.enter(1, self.engine.pace())
        try:
            job = self.verifier.prepare(request, caller, named)
            pending: Pending = self.engine.submit(job, request.serial)
            pending.add_done_callback(functools.partial(_count, caller.institution))
            result = await (pending if isinstance(pending, asyncio.Future)
                            else asyncio.wrap_future(pending))
        finally:
            self.admission.leave(1)
        if job[3] is not None:
            self.verifier.crash_at_committed((job,))
        return answer(result, request.request_id)

    @staticmethod
    def _no_call_key(context: grpc.aio.ServicerContext) -> None:
        """VerifyBatch and VerifyStream name a key per request, not one for the call."""
        if idempotency.key_of(context.invocation_metadata()) is not None:
            raise BadRequest(CALL_KEY, field=idempotency.METADATA_KEY,
                             reason="BAD_IDEMPOTENCY_KEY")

    def _frame(self, requests: Sequence[otp_pb2.VerifyRequest], caller: Caller,
               method: str) -> asyncio.Future[list[otp_pb2.VerifyResponse]]:
        """The answers of one call's (or stream frame's) verifications, in order. Raises
        LimitReached when this process holds as many as it admits; cancelling the future
        drops the verifications no writer has taken."""
        count = len(requests)
        self.admission.enter(count, self.engine.pace())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[otp_pb2.VerifyResponse]] = loop.create_future()

        def finish(answers: list[otp_pb2.VerifyResponse]) -> None:
            self.admission.leave(count)
            if not future.done():
                future.set_result(answers)

        def done(answers: list[otp_pb2.VerifyResponse]) -> None:
            try:
                loop.call_soon_threadsafe(finish, answers)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for these answers

        group = self.verifier.submit(requests, caller, method, done)
        future.add_done_callback(lambda f: group.cancel() if f.cancelled() else None)
        return future

    async def VerifyBatch(self, request: otp_pb2.VerifyBatchRequest,
                          context: grpc.aio.ServicerContext) -> otp_pb2.VerifyBatchResponse:
        caller = require_role(Role.BACKEND)
        self._no_call_key(context)
        self.verifier.check_size(len(request.requests))
        answers = await self._frame(request.requests, caller, VERIFY_BATCH)
        return otp_pb2.VerifyBatchResponse(responses=answers)

    async def VerifyStream(self, request_iterator: AsyncIterator[otp_pb2.VerifyBatchRequest],
                           context: grpc.aio.ServicerContext
                           ) -> AsyncIterator[otp_pb2.VerifyBatchResponse]:
        caller = require_role(Role.BACKEND)
        self._no_call_key(context)
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[asyncio.Future[list[otp_pb2.VerifyResponse]] | None] = (
            asyncio.Queue())
        room = asyncio.Semaphore(STREAM_FRAMES_AHEAD)  # frames read ahead of their answers

        async def read() -> None:
            try:
                async for frame in request_iterator:
                    await room.acquire()
                    requests = frame.requests
                    self.verifier.check_size(len(requests))
                    try:
                        pending = self._frame(requests, caller, VERIFY_STREAM)
                    except LimitReached as exc:
                        pending = loop.create_future()
                        pending.set_result([refused(exc, r.request_id, VERIFY_STREAM)
                                            for r in requests])
                    frames.put_nowait(pending)
            finally:
                frames.put_nowait(None)

        reader = asyncio.ensure_future(read())
        try:
            while (pending := await frames.get()) is not None:
                answers = await pending
                room.release()
                yield otp_pb2.VerifyBatchResponse(responses=answers)
            await reader  # surfaces a broken request stream or an oversized frame
        finally:
            # The client went away (or the stream ended): verifications no writer has taken
            # yet are dropped; those in a batch are committed, their answers unsent.
            reader.cancel()
            while not frames.empty():
                left = frames.get_nowait()
                if left is not None:
                    left.cancel()

    async def Unlock(self, request: otp_pb2.UnlockRequest,
                     context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        operator = _text(request.operator_id, "operator_id", required=True)
        reason = _text(request.reason, "reason", required=True)
        device = await self._tx(lambda tx: self.center.unlock(
            tx, serial=request.serial, caller=caller, operator=operator, reason=reason))
        return self._status(device)

    async def ReportLost(self, request: otp_pb2.ReportLostRequest,
                         context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH, Role.BACKEND)
        validate.serial(request.serial)
        reason = _text(request.reason, "reason")
        device = await self._tx(lambda tx: self.center.report_lost(
            tx, serial=request.serial, caller=caller, reason=reason))
        return self._status(device)

    async def WithdrawLossReport(self, request: otp_pb2.WithdrawLossReportRequest,
                                 context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        operator = _text(request.operator_id, "operator_id", required=True)
        reason = _text(request.reason, "reason", required=True)
        device = await self._tx(lambda tx: self.center.withdraw_loss_report(
            tx, serial=request.serial, caller=caller, operator=operator, reason=reason))
        return self._status(device)

    async def Replace(self, request: otp_pb2.ReplaceRequest,
                      context: grpc.aio.ServicerContext) -> otp_pb2.ReplaceResponse:
        caller = require_role(Role.BRANCH)
        validate.serial(request.old_serial, "old_serial")
        validate.serial(request.new_serial, "new_serial")
        if request.old_serial == request.new_serial:
            raise BadRequest("the new serial must differ from the old one")
        operator = _text(request.operator_id, "operator_id", required=True)
        if request.reason == otp_pb2.REPLACE_REASON_UNSPECIFIED:
            raise BadRequest("reason (REISSUE or WARRANTY_EXPIRED) is required")
        if request.reason not in (otp_pb2.REPLACE_REASON_REISSUE,
                                  otp_pb2.REPLACE_REASON_WARRANTY_EXPIRED):
            raise BadRequest(f"unknown replace reason {request.reason}")
        p = request.parameters
        _parameters(p)
        kind: Kind | None = kind_from_pb(p.kind)
        algorithm: Algorithm | None = algorithm_from_pb(p.algorithm)
        old, new = await self._tx(lambda tx: self.center.replace(
            tx, old_serial=request.old_serial, new_serial=request.new_serial,
            warranty_expired=request.reason == otp_pb2.REPLACE_REASON_WARRANTY_EXPIRED,
            seed=request.seed or None, kind=kind, digits=p.digits or None,
            period=p.period_seconds or None, algorithm=algorithm, counter=p.counter,
            caller=caller, operator=operator))
        return otp_pb2.ReplaceResponse(old_device=self._status(old),
                                       new_device=self._status(new.device),
                                       generated_seed=new.generated_seed or b"",
                                       provisioning_uri=new.provisioning_uri)

    async def Resync(self, request: otp_pb2.ResyncRequest,
                     context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        operator = _text(request.operator_id, "operator_id", required=True)
        first, second = _code(request.first_code, "first_code"), _code(request.second_code,
                                                                        "second_code")
        device = await self._tx(lambda tx: self.center.resync(
            tx, serial=request.serial, first=first, second=second, caller=caller,
            operator=operator))
        return self._status(device)

    async def AssignCustomer(self, request: otp_pb2.AssignCustomerRequest,
                             context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH)
        validate.serial(request.serial)
        customer_id = validate.customer_ref(request.customer_id)
        operator = _text(request.operator_id, "operator_id", required=True)
        device = await self._tx(lambda tx: self.center.assign_customer(
            tx, serial=request.serial, caller=caller, customer_id=customer_id,
            operator=operator))
        return self._status(device)

    async def ImportDevices(self, request: otp_pb2.ImportDevicesRequest,
                            context: grpc.aio.ServicerContext) -> otp_pb2.ImportDevicesResponse:
        caller = require_role(Role.BRANCH)
        operator = _text(request.operator_id, "operator_id", required=True)
        which = request.WhichOneof("protection")
        key = request.pre_shared_key if which == "pre_shared_key" else None
        password = request.password if which == "password" else None
        if key is not None and len(key) not in (16, 24, 32):
            raise BadRequest("pre_shared_key must be 16, 24 or 32 bytes (an AES key)",
                             field="pre_shared_key")
        if password is not None and not 0 < len(password) <= MAX_PASSWORD:
            raise BadRequest(f"password must be 1..{MAX_PASSWORD} characters",
                             field="password")
        seeds = await self.app.run_blocking(
            self.center.read_seed_file, request.pskc, key=key, password=password)
        await self.app.run_blocking(
            self.app.db.run, lambda tx: self.center.import_devices(
                tx, seeds=seeds, caller=caller, operator=operator, dry_run=request.dry_run),
            write=not request.dry_run)
        return seed_file_to_pb(seeds, request.dry_run)

    async def GetStatus(self, request: otp_pb2.GetStatusRequest,
                        context: grpc.aio.ServicerContext) -> otp_pb2.DeviceStatus:
        caller = require_role(Role.BRANCH, Role.BACKEND, Role.ADMIN)
        validate.serial(request.serial)
        device = await self.app.run_store(
            self.app.db.run, lambda tx: self.center.status(tx, request.serial, caller),
            write=False)
        return self._status(device)
