"""``authd.v1.TokenService``: validate -> convert -> call the token service -> convert."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authd import validate
from authd.app import App
from authd.call_link import Answer, LinkedMethod, LinkedStream, StreamOut, answered_by
from authd.context import Caller, Role, require_role
from authd.token import convert
from authd.token.lending import TokenLending
from authd.token.linked_stream import (
    STREAM_BATCH,
    STREAM_LANES,
    LinkedSigns,
    LinkedSignStream,
)
from authd.token.service import SignJob, TokenService
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from devices.errors import BadRequest, LimitReached
from devices.token.token import Signature
from drivers.pkcs11 import TokenEvent

T = TypeVar("T")
SIGN = "/authd.v1.TokenService/Sign"
SIGN_STREAM = "/authd.v1.TokenService/SignStream"
WATCH_QUEUE = 256
STREAM_WINDOW = 64  # requests of one stream read ahead of their answers


def _input(request: Any) -> tuple[bytes | None, bytes | None]:
    which = request.WhichOneof("input")
    if which == "data":
        return bytes(request.data), None
    if which == "digest":
        return None, bytes(request.digest)
    raise BadRequest("give data or digest")


class TokenServicer(token_pb2_grpc.TokenServiceServicer):
    def __init__(self, app: App, service: TokenService) -> None:
        self.app = app
        self.service = service

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.app.run_blocking(fn, *args, **kwargs)

    async def ListTokens(
        self, request: pb.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTokensResponse:
        require_role(Role.BRANCH, Role.ADMIN)
        tokens = await self._run(self.service.list_tokens)
        return pb.ListTokensResponse(tokens=[convert.token(t) for t in tokens])

    async def WatchTokens(
        self, request: pb.WatchTokensRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TokenEvent]:
        require_role(Role.BRANCH, Role.ADMIN)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[TokenEvent | None] = asyncio.Queue()

        def put(event: TokenEvent) -> None:
            if queue.qsize() >= WATCH_QUEUE:  # a reader that stopped reading: end its stream
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

        def listener(event: TokenEvent) -> None:
            loop.call_soon_threadsafe(put, event)

        unsubscribe = await self._run(self.service.watcher.subscribe, listener)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    raise LimitReached("the watcher fell behind the token events; watch again")
                yield convert.event(event)
        finally:
            unsubscribe()

    async def Login(
        self, request: pb.TokenLoginRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenLoginResponse:
        caller = require_role(Role.BRANCH)
        pin = validate.pin(request.pin)
        result = await self._run(self.service.login, caller, request.token_serial, pin)
        return pb.TokenLoginResponse(
            session=result.login.handle,
            expires_at=_unix_in(result.expires_in),
            idle_timeout_seconds=int(self.service.settings.session_idle_seconds),
            token=convert.token(result.token),
        )

    async def Logout(
        self, request: pb.TokenLogoutRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenLogoutResponse:
        caller = require_role(Role.BRANCH)
        await self._run(self.service.logout, caller, request.session)
        return pb.TokenLogoutResponse()

    async def UnblockPin(
        self, request: pb.TokenUnblockPinRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenUnblockPinResponse:
        caller = require_role(Role.BRANCH)
        so_pin = validate.pin(request.so_pin, "so_pin")
        new_pin = validate.pin(request.new_pin, "new_pin")
        info = await self._run(
            self.service.unblock_pin,
            caller,
            request.token_serial,
            so_pin,
            new_pin,
            request.operator,
            request.reason,
        )
        return pb.TokenUnblockPinResponse(token=convert.token(info))

    async def GenerateKeyPair(
        self, request: pb.TokenGenerateKeyPairRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenKeyInfo:
        caller = require_role(Role.BRANCH)
        key = await self._run(
            self.service.generate_key,
            caller,
            request.session,
            convert.key_spec(request.spec),
            request.label,
            bytes(request.key_id) or None,
        )
        return convert.key(key)

    async def CreateCsr(
        self, request: pb.TokenCreateCsrRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenCreateCsrResponse:
        caller = require_role(Role.BRANCH)
        der = await self._run(
            self.service.create_csr,
            caller,
            request.session,
            bytes(request.key_id),
            request.subject,
            request.rsa_pss,
        )
        pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()
        return pb.TokenCreateCsrResponse(csr_der=der, csr_pem=pem)

    async def ImportCertificate(
        self, request: pb.TokenImportCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenCertificateInfo:
        caller = require_role(Role.BRANCH)
        info = await self._run(
            self.service.import_certificate,
            caller,
            request.session,
            bytes(request.certificate),
            request.label or None,
            request.replace,
        )
        return convert.certificate(info)

    async def ListObjects(
        self, request: pb.TokenListObjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenListObjectsResponse:
        caller = require_role(Role.BRANCH)
        if not request.session and not request.token_serial:
            raise BadRequest("give a session or a token_serial")
        keys, certs = await self._run(
            self.service.list_objects, caller, request.session, request.token_serial
        )
        return pb.TokenListObjectsResponse(
            keys=[convert.key(k) for k in keys],
            certificates=[convert.certificate(c) for c in certs],
        )

    async def Sign(
        self, request: pb.TokenSignRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenSignResponse:
        sign, inline = self._signer(request)
        if inline:
            return sign()  # faster than a hop to a thread and back
        return await self._run(sign)

    def _signer(self, request: pb.TokenSignRequest) -> tuple[Callable[[], pb.TokenSignResponse],
                                                             bool]:
        """A unary Sign's work, and whether it may run where the call came in (a token that
        signs fast, little data to hash: the GIL is released inside C_Sign)."""
        caller, job = self._sign_job(request)

        def sign() -> pb.TokenSignResponse:
            return _response(self.service.sign(
                caller, job.handle, job.key_id, data=job.data, digest=job.digest,
                algorithm=job.algorithm, token_hashes=job.token_hashes))

        return sign, self.service.signs_inline(job.handle, job.data, job.key_id)

    @staticmethod
    def _sign_job(request: pb.TokenSignRequest) -> tuple[Caller, SignJob]:
        caller = require_role(Role.BRANCH)
        data, digest = _input(request)
        return caller, SignJob(request.session, bytes(request.key_id), data, digest,
                               convert.algorithm(request.algorithm), request.token_hashes)

    def linked_methods(self) -> dict[str, LinkedMethod | LinkedStream]:
        """Sign and SignStream, served by the native front end over the call link
        (authd/call_link.py). A Sign is signed at once on the link's thread when it came
        alone and signs fast; otherwise it waits with the others (``LinkedSigns``: the calls
        of one read of the link are signed together, one session per run of the same login and
        key, on the link's thread when no worker is signing, and answered in one frame). A
        SignStream's signatures
        go to workers in batches, as the stream served here does
        (authd/token/linked_stream.py). A unary Sign's good answer may lend its login to the
        front end (``TokenLending``, authd/token/lending.py), and with it that caller's
        SignStream requests on that handle: the front end signs them until one it cannot
        sign, and sends that one and the rest here (a stream this side opens then)."""
        signs = LinkedSigns(self.service, self.app.executor)
        lending = TokenLending(self.service, SIGN, SIGN_STREAM)

        def serve(request: pb.TokenSignRequest, answer: Answer, alone: bool) -> None:
            caller, job = self._sign_job(request)
            answer = lending.lending(caller, job.handle, answer)
            inline = self.service.signs_inline(job.handle, job.data, job.key_id)
            if alone and inline:
                answered_by(lambda: _response(self.service.sign(
                    caller, job.handle, job.key_id, data=job.data, digest=job.digest,
                    algorithm=job.algorithm, token_hashes=job.token_hashes)), answer)
            else:
                signs.submit(caller, job, answer, held=inline)

        def open_stream(out: StreamOut) -> LinkedSignStream:
            caller = require_role(Role.BRANCH)
            return LinkedSignStream(self.service, self.app.executor, caller, out)

        return {SIGN: LinkedMethod(pb.TokenSignRequest, serve, settle=signs.settle,
                                   leases=lending),
                SIGN_STREAM: LinkedStream(pb.TokenSignRequest, open_stream, leases=lending)}

    async def SignStream(
        self,
        request_iterator: AsyncIterator[pb.TokenSignRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.TokenSignResponse]:
        """Signatures answered in order. Requests waiting to be signed go off the event loop
        together (up to STREAM_BATCH in one hop), in up to STREAM_LANES batches at once, so
        a fast token pays one thread hop for many signatures and a slow one (RSA) still
        signs on several pooled sessions in parallel."""
        caller = require_role(Role.BRANCH)
        room = asyncio.Semaphore(STREAM_WINDOW)
        lanes = asyncio.Semaphore(STREAM_LANES)
        waiting: collections.deque[SignJob | Exception] = collections.deque()
        more = asyncio.Event()
        reading = True
        batches: asyncio.Queue[asyncio.Future[list[Signature | Exception]] | None]
        batches = asyncio.Queue()

        async def read() -> None:
            nonlocal reading
            try:
                async for request in request_iterator:
                    await room.acquire()
                    try:
                        data, digest = _input(request)
                        waiting.append(
                            SignJob(
                                request.session,
                                bytes(request.key_id),
                                data,
                                digest,
                                convert.algorithm(request.algorithm),
                                request.token_hashes,
                            )
                        )
                    except Exception as exc:  # a bad request: answered in order, as an error
                        waiting.append(exc)
                        break
                    more.set()
            finally:
                reading = False
                more.set()

        async def dispatch() -> None:
            while True:
                await more.wait()
                more.clear()
                while waiting:
                    await lanes.acquire()
                    jobs = [waiting.popleft() for _ in range(min(STREAM_BATCH, len(waiting)))]
                    batch = asyncio.ensure_future(self._run(self.service.sign_many, caller, jobs))
                    batch.add_done_callback(lambda _: lanes.release())
                    await batches.put(batch)
                if not reading and not waiting:
                    await batches.put(None)
                    return

        tasks = [asyncio.ensure_future(read()), asyncio.ensure_future(dispatch())]
        try:
            while (batch := await batches.get()) is not None:
                for result in await batch:
                    if isinstance(result, Exception):
                        raise result
                    room.release()
                    yield pb.TokenSignResponse(
                        signature=result.signature,
                        algorithm=convert.ALGORITHM.to_pb(result.algorithm),
                    )
        finally:
            for task in tasks:
                task.cancel()
            while not batches.empty():  # results nobody will read: let them finish quietly
                left = batches.get_nowait()
                if left is not None:
                    left.add_done_callback(_ignore_result)

    async def Verify(
        self, request: pb.TokenVerifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenVerifyResponse:
        caller = require_role(Role.BRANCH)
        if not request.session and not request.token_serial:
            raise BadRequest("give a session or a token_serial")
        data, digest = _input(request)
        valid = await self._run(
            self.service.verify,
            caller,
            request.session,
            request.token_serial,
            bytes(request.key_id),
            bytes(request.signature),
            data=data,
            digest=digest,
            algorithm=convert.algorithm(request.algorithm),
        )
        return pb.TokenVerifyResponse(valid=valid)

    async def DeleteObject(
        self, request: pb.TokenDeleteObjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenDeleteObjectResponse:
        caller = require_role(Role.BRANCH)
        count = await self._run(
            self.service.delete,
            caller,
            request.session,
            bytes(request.key_id),
            convert.scope(request.scope),
        )
        return pb.TokenDeleteObjectResponse(deleted=count)

    async def RegisterToken(
        self, request: pb.RegisterTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.TokenRegistration:
        caller = require_role(Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator, "operator", required=True)
        terminal = validate.text(request.terminal, "terminal")
        reg = await self._run(
            self.service.register, caller, request.session, customer_id, operator, terminal,
            request.key_id,
        )
        return convert.registration(reg)

    async def DeregisterToken(
        self, request: pb.DeregisterTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeregisterTokenResponse:
        caller = require_role(Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator, "operator", required=True)
        reason = validate.text(request.reason, "reason")
        reg = await self._run(
            self.service.deregister, caller, request.token_serial, customer_id, operator, reason
        )
        return pb.DeregisterTokenResponse(registration=convert.registration(reg))

    async def CheckTokenExemption(
        self, request: pb.CheckTokenExemptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckTokenExemptionResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        exemption = await self._run(
            self.service.exemption, caller, request.token_serial, customer_id
        )
        reg = exemption.registration
        return pb.CheckTokenExemptionResponse(
            exempt=exemption.exempt,
            reason=exemption.reason,
            registration=convert.registration(reg) if reg is not None else None,
        )


def _response(sig: Signature) -> pb.TokenSignResponse:
    return pb.TokenSignResponse(signature=sig.signature,
                                algorithm=convert.ALGORITHM.to_pb(sig.algorithm))


def _ignore_result(future: asyncio.Future[list[Signature | Exception]]) -> None:
    if not future.cancelled():
        future.exception()


def _unix_in(seconds: float) -> float:
    return time.time() + seconds
