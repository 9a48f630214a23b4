"""``authd.v1.SmartcardService``: thin; validation and card work live in service.py (card
work runs on each reader's own thread, awaited here without an executor hop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from authd import validate
from authd.app import App
from authd.call_link import Answer, LinkedMethod, LinkedStream, StreamOut
from authd.context import Role, require_role
from authd.customer import convert as customer_convert
from authd.smartcard import convert
from authd.smartcard.linked_stream import LinkedTransmitStream
from authd.v1 import call_link_pb2, customer_pb2, smartcard_pb2_grpc
from authd.v1 import smartcard_pb2 as pb
from devices.errors import Unreachable
from drivers.pcsc.events import ReaderEvent

if TYPE_CHECKING:
    from authd.smartcard.service import SmartcardService

_VIEW_ROLES = (Role.BRANCH, Role.ADMIN)


def _pin(value: str, name: str = "pin") -> str:
    """A PIV PIN or PUK: refused before the card is touched when a PIN pad could not have
    sent it, so it never costs the customer one of the card's tries."""
    return validate.pin(value, name, length=validate.PIV_PIN_LENGTH)


class SmartcardServicer(smartcard_pb2_grpc.SmartcardServiceServicer):
    def __init__(self, app: App, service: SmartcardService | None, why_missing: str = "") -> None:
        self.app = app
        self._service = service
        self._why_missing = why_missing

    @property
    def service(self) -> SmartcardService:
        if self._service is None:
            raise Unreachable(self._why_missing or "smartcard support is not available")
        return self._service

    async def ListReaders(
        self, request: pb.ListReadersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReadersResponse:
        require_role(*_VIEW_ROLES)
        snapshot = self.service.snapshot()
        if not snapshot.available:
            raise Unreachable("the PC/SC service (pcscd) is not reachable")
        return convert.readers_to_proto(snapshot)

    async def WatchReaders(
        self, request: pb.WatchReadersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReaderEvent]:
        require_role(*_VIEW_ROLES)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ReaderEvent] = asyncio.Queue()

        def deliver(event: ReaderEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        unsubscribe = self.service.monitor.subscribe(deliver)
        try:
            while True:
                yield convert.event_to_proto(await queue.get())
        finally:
            unsubscribe()

    async def GetCardInfo(
        self, request: pb.CardRequest, context: grpc.aio.ServicerContext
    ) -> pb.CardInfo:
        require_role(*_VIEW_ROLES)
        info = await self.service.card_info(request.reader)
        return convert.card_info_to_proto(info)

    async def GetPivStatus(
        self, request: pb.CardRequest, context: grpc.aio.ServicerContext
    ) -> pb.PivStatus:
        require_role(Role.BRANCH)
        status = await self.service.piv_status(request.reader)
        return convert.piv_status_to_proto(request.reader, status)

    async def VerifyPin(
        self, request: pb.VerifyPinRequest, context: grpc.aio.ServicerContext
    ) -> pb.PinResult:
        require_role(Role.BRANCH)
        result = await self.service.verify_pin(request.reader, _pin(request.pin))
        return convert.pin_result_to_proto(result)

    async def ChangePin(
        self, request: pb.ChangePinRequest, context: grpc.aio.ServicerContext
    ) -> pb.PinResult:
        require_role(Role.BRANCH)
        result = await self.service.change_pin(
            request.reader, _pin(request.old_pin, "old_pin"), _pin(request.new_pin, "new_pin"))
        return convert.pin_result_to_proto(result)

    async def UnblockPin(
        self, request: pb.UnblockPinRequest, context: grpc.aio.ServicerContext
    ) -> pb.PinResult:
        require_role(Role.BRANCH)
        result = await self.service.unblock_pin(
            request.reader, _pin(request.puk, "puk"), _pin(request.new_pin, "new_pin"))
        return convert.pin_result_to_proto(result)

    async def GenerateKey(
        self, request: pb.GenerateKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateKeyResponse:
        require_role(Role.BRANCH)
        slot = convert.slot_from_proto(request.slot)
        key_type = convert.key_type_from_proto(request.algorithm)
        public_key = await self.service.generate_key(
            request.reader, slot, key_type, request.management_key
        )
        return pb.GenerateKeyResponse(public_key_der=convert.public_key_der(public_key))

    async def ImportCertificate(
        self, request: pb.ImportCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportCertificateResponse:
        require_role(Role.BRANCH)
        slot = convert.slot_from_proto(request.slot)
        certificate = await self.service.import_certificate(
            request.reader,
            slot,
            request.certificate_der,
            request.management_key,
        )
        return pb.ImportCertificateResponse(
            certificate=convert.certificate_to_proto(slot, certificate)
        )

    async def Sign(
        self, request: pb.SignRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignResponse:
        require_role(Role.BRANCH)
        slot = convert.slot_from_proto(request.slot)
        key_type = convert.key_type_from_proto(request.algorithm)
        result = await self.service.sign(
            request.reader,
            slot,
            key_type,
            _pin(request.pin),
            request.message,
            request.digest,
            request.hash,
        )
        return pb.SignResponse(
            pin=convert.pin_result_to_proto(result.pin), signature=result.signature
        )

    async def RegisterCard(
        self, request: pb.RegisterCardRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterCardResponse:
        caller = require_role(Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator_id, "operator_id", required=True)
        terminal = validate.text(request.terminal, "terminal")
        key_slot = convert.slot_from_proto(request.key_slot) if request.key_slot else None
        result, reg = await self.service.register_card(
            caller, request.reader, _pin(request.pin), customer_id,
            operator, terminal, key_slot,
        )
        return pb.RegisterCardResponse(
            pin=convert.pin_result_to_proto(result),
            registration=customer_convert.registration_to_pb(reg) if reg is not None else None,
        )

    async def DeregisterCard(
        self, request: pb.DeregisterCardRequest, context: grpc.aio.ServicerContext
    ) -> customer_pb2.BranchRegistration:
        caller = require_role(Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator_id, "operator_id", required=True)
        reason = validate.text(request.reason, "reason")
        reg = await self.app.run_blocking(
            self.service.deregister_card, caller, request.card_serial, customer_id, operator,
            reason,
        )
        return customer_convert.registration_to_pb(reg)

    async def Transmit(
        self, request: pb.TransmitRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransmitResponse:
        require_role(Role.BRANCH)
        responses = await self.service.transmit(request.reader, list(request.apdus))
        return convert.responses_to_proto(responses)

    def linked_methods(self) -> dict[str, LinkedMethod | LinkedStream]:
        """Transmit and TransmitStream, served by the native front end over the call link
        (authd/call_link.py): the APDUs go to the reader's thread, which answers; a call that
        came alone to an idle reader whose calls are fast is sent at once on the link's
        thread (one hop less). A stream's requests go one after the other
        (authd/smartcard/linked_stream.py)."""

        def serve(request: pb.TransmitRequest, answer: Answer, alone: bool) -> None:
            require_role(Role.BRANCH)
            lease: list[call_link_pb2.CardLease] = []

            def done(responses: list[tuple[bytes, int]] | None, error: BaseException | None
                     ) -> None:
                if error is not None:
                    answer(None, error)
                else:
                    assert responses is not None
                    answer(convert.responses_to_proto(responses), None,
                           lease=lease[0] if lease else None)

            self.service.transmit_then(request.reader, list(request.apdus), done, may_wait=alone,
                                       lent=lease.append)

        def open_stream(out: StreamOut) -> LinkedTransmitStream:
            require_role(Role.BRANCH)
            return LinkedTransmitStream(lambda: self.service, out)

        leases = self._service.lending if self._service is not None else None
        return {"/authd.v1.SmartcardService/Transmit": LinkedMethod(pb.TransmitRequest, serve,
                                                                    leases=leases),
                "/authd.v1.SmartcardService/TransmitStream": LinkedStream(
                    pb.TransmitRequest, open_stream, leases=leases)}

    async def TransmitStream(
        self, request_iterator: AsyncIterator[pb.TransmitRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TransmitResponse]:
        require_role(Role.BRANCH)
        async for request in request_iterator:
            responses = await self.service.transmit(request.reader, list(request.apdus))
            yield convert.responses_to_proto(responses)
