"""The center's half of printing, over a branch node's link
(``authd.v1.SecurityCardCenterService``). The released job holds the codes: it stays in memory
here, on its way to this node's printer or embosser."""

from __future__ import annotations

from authd.center.forward import operator_of
from authd.center.link import CenterLink, Rpc
from authd.context import current_caller
from authd.security_card.desk import Kind, Request
from authd.v1 import security_card_pb2 as pb

SERVICE = "SecurityCardCenterService"
PREPARE = {
    "issue": Rpc.of(pb.DESCRIPTOR, SERVICE, "PrepareIssue"),
    "replace": Rpc.of(pb.DESCRIPTOR, SERVICE, "PrepareReplace"),
    "reprint": Rpc.of(pb.DESCRIPTOR, SERVICE, "PrepareReprint"),
}
RECORD = Rpc.of(pb.DESCRIPTOR, SERVICE, "RecordPrint")


class RemoteCardCenter:
    """:class:`authd.security_card.desk.CardCenter` at the center, through the link."""

    def __init__(self, link: CenterLink) -> None:
        self.link = link

    def prepare(self, kind: Kind, request: Request) -> pb.SecurityCardPrintRelease:
        caller = self.link.acting_for(current_caller())
        # Not retried: a release whose answer was lost issued a card; the teller reprints.
        release: pb.SecurityCardPrintRelease = self.link.call_blocking(
            PREPARE[kind], request, operator=operator_of(request, caller))
        return release

    def record(self, request: pb.RecordSecurityCardPrintRequest) -> pb.SecurityCardStatus:
        caller = self.link.acting_for(current_caller())
        status: pb.SecurityCardStatus = self.link.call_blocking(
            RECORD, request, operator=operator_of(request, caller))
        return status
