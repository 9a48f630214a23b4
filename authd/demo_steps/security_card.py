"""Demo step: a braille security card for a blind customer, embossed, read back, and used.

``run(ctx)`` needs a daemon whose ``[security_card] embosser`` points at the embosser
simulator ``ctx.embosser`` (run by the caller, which reads the embossed card in process).
Standalone: ``python -m authd.demo_steps.security_card`` starts its own daemon and simulator.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from simulators.security_card.cardholder import VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator

CUSTOMER = "cust-braille-001"


@dataclass(frozen=True)
class SecurityCardDemoContext:
    branch_channel: grpc.Channel  # a teller terminal of the bank (role branch)
    backend_channel: grpc.Channel  # the same bank's internet-banking backend (role backend)
    say: Callable[[str], None]
    embosser: EmbosserSimulator  # where the daemon embosses (its paper is read in process)
    customer_id: str = CUSTOMER


def run(ctx: SecurityCardDemoContext) -> None:
    branch = pb_grpc.SecurityCardServiceStub(ctx.branch_channel)
    backend = pb_grpc.SecurityCardServiceStub(ctx.backend_channel)
    say = ctx.say

    say(f"Branch: issue a braille security card (점자 보안카드) to {ctx.customer_id}")
    existing = backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id=ctx.customer_id))
    if existing.active_serial:
        issued = branch.ReplaceCard(pb.ReplaceSecurityCardRequest(
            serial=existing.active_serial, medium=pb.SECURITY_CARD_MEDIUM_BRAILLE,
            reason="demo"))
    else:
        issued = branch.IssueCard(pb.IssueSecurityCardRequest(
            customer_id=ctx.customer_id, medium=pb.SECURITY_CARD_MEDIUM_BRAILLE))
    card, job = issued.card, issued.print_job
    say(f"  card {card.serial}: {card.code_count} codes of {card.code_digits} digits; "
        f"embosser {job.device}: {pb.SecurityCardPrintState.Name(job.state)}, "
        f"{job.pages} page(s); no code came back over the API")
    say("  the teller's preview, codes masked:")
    for line in issued.masked_preview.splitlines()[:4]:
        say(f"    {line}")

    embossed = ctx.embosser.last_job().data
    holder = VirtualCardholder(embossed)
    say(f"Customer: reads the embossed card by touch: {len(holder.card.codes)} codes "
        f"(number sign ⠼ then a-j for the digits)")

    who = backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id=ctx.customer_id))
    say(f"Backend: braille-card user = {who.braille_card_user}, exempt from additional "
        f"authentication = {who.additional_authentication_exempt} ({who.exemption_reason})")

    ch = backend.StartChallenge(pb.StartSecurityCardChallengeRequest(
        customer_id=ctx.customer_id))
    say(f"Backend: challenge {ch.challenge_id[:8]}…, screen reader says: {ch.prompt_text}")
    say(f"  braille display shows: {ch.prompt_braille}")
    answer = holder.answer_prompt(ch.prompt_text, card.code_digits)
    result = backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
        challenge_id=ch.challenge_id, answer=answer))
    say(f"Customer answers {len(answer)} digits read from the braille: "
        f"{pb.SecurityCardOutcome.Name(result.outcome)} — {result.message_text}")
    if not result.accepted:
        raise RuntimeError("the blind customer's answer was refused")

    again = backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
        challenge_id=ch.challenge_id, answer=answer))
    say(f"  the same challenge again: {pb.SecurityCardOutcome.Name(again.outcome)} "
        "(single use)")


def main() -> int:
    from authd import config as configmod
    from authd.client import dev_channel
    from authd.server import BackgroundServer

    with EmbosserSimulator() as embosser, tempfile.TemporaryDirectory() as data_dir:
        raw: dict[str, Any] = {
            "data_dir": data_dir,
            "simulators": True,
            "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0},
            "kek": {"kind": "file"},
            "security_card": {"embosser": embosser.address},
        }
        server = BackgroundServer(configmod.load(None, environ={}, overrides=raw))
        try:
            address = f"127.0.0.1:{server.port}"
            with dev_channel(address, "bank-a", "branch", "teller-1") as branch, \
                    dev_channel(address, "bank-a", "backend", "ib-1") as backend:
                run(SecurityCardDemoContext(branch, backend, print, embosser))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
