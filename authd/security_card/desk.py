"""Issuing, replacing and reprinting a card where its printer or embosser is.

The center generates a card's codes and seals them, renders the print job and releases it
(``prepare``); the device of the node the teller works at prints it; the center records how
the print went (``record``). The codes exist at the device's node only in memory, while the job
goes to the device. A node with the center role does both halves in process
(:class:`LocalCardCenter`); a branch-only node asks the center over its link
(``authd/security_card/remote.py``).

A print that fails (paper jam, offline) leaves the card issued, as in one process: the teller
reprints it. So does a node that stops between the release and the print: the card is issued,
its print record says pending, and the reprint is audited at the center.
"""

from __future__ import annotations

import logging
import re
from typing import Literal, Protocol

from authd.context import current_caller
from authd.security_card import convert
from authd.security_card.output import (
    FAILURE_FAULT,
    STATE_FAILED,
    CardOutput,
    PrintOutcome,
)
from authd.security_card.service import SecurityCardService
from authd.v1 import security_card_pb2 as pb
from devices.errors import AuthdError, Unreachable

log = logging.getLogger(__name__)

Kind = Literal["issue", "replace", "reprint"]
Request = (pb.IssueSecurityCardRequest | pb.ReplaceSecurityCardRequest
           | pb.ReprintSecurityCardRequest)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class CardCenter(Protocol):
    """The center's half of printing (blocking calls)."""

    def prepare(self, kind: Kind, request: Request) -> pb.SecurityCardPrintRelease: ...

    def record(self, request: pb.RecordSecurityCardPrintRequest) -> pb.SecurityCardStatus: ...


class LocalCardCenter:
    """:class:`CardCenter` on the store of a node with the center role, for the caller's
    institution (also what ``authd.v1.SecurityCardCenterService`` serves branch nodes)."""

    def __init__(self, service: SecurityCardService) -> None:
        self.service = service

    @property
    def _max(self) -> int:
        return self.service.settings.max_failures

    def prepare(self, kind: Kind, request: Request) -> pb.SecurityCardPrintRelease:
        institution = current_caller().institution
        s = self.service
        if isinstance(request, pb.IssueSecurityCardRequest):
            braille = bool(convert.braille_in(request.medium, default=False))
            prepared = s.prepare_issue(institution, request.customer_id, braille,
                                       convert.layout_in(request.layout), request.include_svg)
        elif isinstance(request, pb.ReplaceSecurityCardRequest):
            prepared = s.prepare_replace(institution, request.serial,
                                         convert.braille_in(request.medium, default=None),
                                         convert.layout_in(request.layout), request.reason,
                                         request.include_svg)
        else:
            prepared = s.prepare_reprint(institution, request.serial,
                                         convert.layout_in(request.layout), request.reason)
        return convert.release(prepared, self._max)

    def record(self, request: pb.RecordSecurityCardPrintRequest) -> pb.SecurityCardStatus:
        row = self.service.record_print(current_caller().institution, request.serial,
                                        convert.print_outcome_in(request.print_job),
                                        reprint=request.reprint, reason=request.reason)
        return convert.card_status(row, self._max)


def _plain(text: str, limit: int = 256) -> str:
    """A device's words as one line of text (they go into the center's record)."""
    return _CONTROL.sub(" ", text).strip()[:limit]


class PrintDesk:
    """The teller's issue, replace and reprint at this node: its device prints."""

    def __init__(self, center: CardCenter, output: CardOutput) -> None:
        self.center = center
        self.output = output

    def issue(self, request: pb.IssueSecurityCardRequest) -> pb.IssueSecurityCardResponse:
        # The device is checked first: without it no card is issued.
        self.output.require(bool(convert.braille_in(request.medium, default=False)))
        card, job, release = self._print("issue", request)
        return pb.IssueSecurityCardResponse(card=card, print_job=job,
                                            masked_preview=release.masked_preview,
                                            masked_svg=release.masked_svg)

    def replace(self, request: pb.ReplaceSecurityCardRequest) -> pb.IssueSecurityCardResponse:
        braille = convert.braille_in(request.medium, default=None)
        if braille is not None:
            self.output.require(braille)
        card, job, release = self._print("replace", request)
        return pb.IssueSecurityCardResponse(card=card, print_job=job,
                                            masked_preview=release.masked_preview,
                                            masked_svg=release.masked_svg)

    def reprint(self, request: pb.ReprintSecurityCardRequest) -> pb.ReprintSecurityCardResponse:
        card, job, _ = self._print("reprint", request)
        return pb.ReprintSecurityCardResponse(card=card, print_job=job)

    def _print(self, kind: Kind, request: Request) -> tuple[
            pb.SecurityCardStatus, pb.SecurityCardPrintJob, pb.SecurityCardPrintRelease]:
        release = self.center.prepare(kind, request)
        braille = release.card.medium == pb.SECURITY_CARD_MEDIUM_BRAILLE
        try:
            self.output.require(braille)
        except AuthdError as exc:
            outcome = PrintOutcome(release.job_name, STATE_FAILED, FAILURE_FAULT, str(exc), "")
        else:
            outcome = self.output.send(braille, release.job_name, release.job)
        release.ClearField("job")  # the codes go no further than the device
        job = convert.print_job(outcome)
        job.message = _plain(job.message)
        job.device = _plain(job.device)
        try:
            card = self.center.record(pb.RecordSecurityCardPrintRequest(
                serial=release.card.serial, print_job=job, reprint=kind == "reprint",
                reason=getattr(request, "reason", "")))
        except Unreachable as exc:
            log.warning("the center was not told how card %s printed: %s",
                        release.card.serial, exc)
            card = release.card
            job.message = _plain(f"{job.message} (the center could not be told: its print "
                                 f"record of the card says pending)")
        return card, job, release
