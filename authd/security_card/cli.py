"""authctl cards ...: security cards and braille security cards for tellers and backends.

No command prints a code: the service never returns one (it goes only to the printer or
embosser). The answer to a challenge is digits of the customer's codes, so it is read like a
PIN (terminal without echo, ``--answer-stdin`` or ``--answer-file``), never from the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from authd.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_secret_options,
    enum_label,
    read_secrets,
    when,
)
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc

MEDIUMS = {"plain": pb.SECURITY_CARD_MEDIUM_PRINTED, "braille": pb.SECURITY_CARD_MEDIUM_BRAILLE}
LAYOUTS = {"card": pb.SECURITY_CARD_LAYOUT_CARD, "page": pb.SECURITY_CARD_LAYOUT_PAGE}
NO_LAYOUT = pb.SECURITY_CARD_LAYOUT_UNSPECIFIED  # the configured default


def _state(value: int) -> str:
    return enum_label(pb.SecurityCardState, value, "SECURITY_CARD_STATE_")


def _print_state(value: int) -> str:
    return enum_label(pb.SecurityCardPrintState, value, "SECURITY_CARD_PRINT_")


def card_lines(c: pb.SecurityCardStatus) -> list[str]:
    braille = c.medium == pb.SECURITY_CARD_MEDIUM_BRAILLE
    medium = "braille" if braille else "plain"
    if braille and c.layout:
        medium += f", {enum_label(pb.SecurityCardLayout, c.layout, 'SECURITY_CARD_LAYOUT_')} layout"
    lines = [
        f"Security card {c.serial} ({medium}): {_state(c.state)}",
        f"  customer {c.customer_id}, {c.code_count} codes of {c.code_digits} digits",
        f"  consecutive wrong answers {c.failures} of {c.max_failures}, "
        f"attempts left {c.attempts_left}",
        f"  issued {when(c.issued_at)}, last change {when(c.updated_at)}",
        f"  {'embossed' if braille else 'printed'} {c.print_count} time(s), "
        f"last: {_print_state(c.last_print_state) if c.print_count else '-'}",
    ]
    if c.braille_card_user:
        lines.append("  braille-card user: exempt from additional authentication")
    if c.replaces:
        lines.append(f"  replaces {c.replaces}")
    if c.replaced_by:
        lines.append(f"  replaced by {c.replaced_by}")
    if c.state == pb.SECURITY_CARD_STATE_RESTRICTED:
        lines.append("  restricted: the customer must come to a branch (authctl cards reset)")
    return lines


def job_lines(j: pb.SecurityCardPrintJob) -> list[str]:
    if j.state == pb.SECURITY_CARD_PRINT_STATE_UNSPECIFIED:
        return ["  no print job (no printer or embosser configured)"]
    where = f" on {j.device}" if j.device else ""
    size = f", {j.pages} page(s), {j.bytes} bytes" if j.pages or j.bytes else ""
    lines = [f"  print job {j.job_id}: {_print_state(j.state)}{where}{size}"]
    if j.state == pb.SECURITY_CARD_PRINT_FAILED:
        failure = enum_label(pb.SecurityCardPrintFailure, j.failure,
                             "SECURITY_CARD_PRINT_FAILURE_")
        lines.append(f"  PRINT FAILED: {failure}" + (f" ({j.message})" if j.message else ""))
    elif j.message:
        lines.append(f"  device says: {j.message}")
    return lines


def _print_failed(job: pb.SecurityCardPrintJob) -> bool:
    return job.state == pb.SECURITY_CARD_PRINT_FAILED


def issued_lines(m: pb.IssueSecurityCardResponse) -> list[str]:
    lines = card_lines(m.card) + job_lines(m.print_job)
    if _print_failed(m.print_job):
        lines.append(f"  the card is issued but not in the customer's hands: fix the device, "
                     f"then authctl cards reprint {m.card.serial} --reason ...")
    if m.masked_preview:
        lines.append("  preview for the teller (every code masked ⠿):")
        lines += [f"    {line}" for line in m.masked_preview.splitlines()]
    return lines


def holder_lines(h: pb.SecurityCardHolder) -> list[str]:
    live = f"live card {h.active_serial}" if h.active_serial else "no live card"
    lines = [f"Customer {h.customer_id}: {live}",
             f"  braille-card user: {'yes' if h.braille_card_user else 'no'}"]
    if h.additional_authentication_exempt:
        lines.append(f"  exempt from additional authentication: {h.exemption_reason}")
    else:
        lines.append("  not exempt from additional authentication")
    return lines


def _digits(r: pb.SecurityCardDigitRequest) -> str:
    positions = ", ".join(str(p) for p in r.digit_positions)
    return f"code {r.code_number:02d}: digit(s) {positions}"


def challenge_lines(ch: pb.SecurityCardChallenge) -> list[str]:
    lines = [
        f"Challenge {ch.challenge_id} for card {ch.serial}"
        + (" (braille card)" if ch.braille_card else ""),
        f"  {_digits(ch.first)}",
        f"  {_digits(ch.second)}",
        f"  answer {ch.answer_length} digits, single use, expires {when(ch.expires_at)}",
        f"  prompt:  {ch.prompt_text}",
    ]
    if ch.prompt_braille:
        lines.append(f"  braille: {ch.prompt_braille}")
    lines.append(f"  answer with: authctl cards verify {ch.challenge_id}")
    return lines


def verify_lines(v: pb.VerifySecurityCardAnswerResponse) -> list[str]:
    outcome = enum_label(pb.SecurityCardOutcome, v.outcome, "SECURITY_CARD_OUTCOME_").upper()
    lines = [f"{outcome}: {v.message_text}"]
    if v.serial:
        lines.append(f"  card {v.serial}: {_state(v.card_state)}, consecutive wrong answers "
                     f"{v.failures}, attempts left {v.attempts_left}")
    return lines


def _stub(ctl: Any) -> pb_grpc.SecurityCardServiceStub:
    return pb_grpc.SecurityCardServiceStub(ctl.channel)


def _svg_path(a: argparse.Namespace) -> str | None:
    """Check ``--svg FILE`` before the card is issued, so a typo does not lose the drawing."""
    path: str | None = a.svg
    if path and (Path(path).is_dir() or not Path(path).resolve().parent.is_dir()):
        raise CommandError(f"--svg {path}: not a file in an existing directory")
    return path


def _write_svg(path: str | None, svg: str) -> None:
    if not path:
        return
    if not svg:
        print("authctl: no drawing written: only a braille card has one", file=sys.stderr)
        return
    try:
        Path(path).write_text(svg, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _issue(ctl: Any, a: argparse.Namespace) -> int:
    svg = _svg_path(a)
    resp = _stub(ctl).IssueCard(pb.IssueSecurityCardRequest(
        customer_id=a.customer, medium=MEDIUMS["braille" if a.braille else "plain"],
        layout=LAYOUTS.get(a.layout or "", NO_LAYOUT), include_svg=bool(svg)), timeout=a.timeout)
    ctl.show(resp, issued_lines)
    _write_svg(svg, resp.masked_svg)
    return EXIT_REFUSED if _print_failed(resp.print_job) else EXIT_OK


def _replace(ctl: Any, a: argparse.Namespace) -> int:
    svg = _svg_path(a)
    resp = _stub(ctl).ReplaceCard(pb.ReplaceSecurityCardRequest(
        serial=a.serial, medium=MEDIUMS.get(a.medium or "", pb.SECURITY_CARD_MEDIUM_UNSPECIFIED),
        layout=LAYOUTS.get(a.layout or "", NO_LAYOUT), reason=a.reason, include_svg=bool(svg)),
        timeout=a.timeout)
    ctl.show(resp, lambda m: [f"{a.serial} is replaced; the new card:", *issued_lines(m)])
    _write_svg(svg, resp.masked_svg)
    return EXIT_REFUSED if _print_failed(resp.print_job) else EXIT_OK


def _reprint(ctl: Any, a: argparse.Namespace) -> int:
    resp = _stub(ctl).ReprintCard(pb.ReprintSecurityCardRequest(
        serial=a.serial, layout=LAYOUTS.get(a.layout or "", NO_LAYOUT), reason=a.reason),
        timeout=a.timeout)
    ctl.show(resp, lambda m: card_lines(m.card) + job_lines(m.print_job))
    return EXIT_REFUSED if _print_failed(resp.print_job) else EXIT_OK


def _challenge(ctl: Any, a: argparse.Namespace) -> None:
    if bool(a.serial) == bool(a.customer):
        raise CommandError("name the card: a SERIAL or --customer ID (not both)")
    ctl.show(_stub(ctl).StartChallenge(pb.StartSecurityCardChallengeRequest(
        serial=a.serial or "", customer_id=a.customer or ""), timeout=a.timeout),
        challenge_lines)


def _verify(ctl: Any, a: argparse.Namespace) -> int:
    (answer,) = read_secrets(a, ["answer"], flag="answer")
    resp = _stub(ctl).VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
        challenge_id=a.challenge_id, answer=answer.strip()), timeout=a.timeout)
    ctl.show(resp, verify_lines)
    return EXIT_OK if resp.accepted else EXIT_REFUSED


def add_commands(sub: Any) -> None:
    cards = sub.add_parser(
        "cards", aliases=["security-cards"],
        help="security cards (plain and braille): issue, challenge, verify, reset, ...",
        description="Security cards (보안카드) and braille security cards (점자 보안카드). "
                    "No command ever shows a code.")
    cmds = cards.add_subparsers(dest="cards_command", required=True, metavar="ACTION")

    def with_reason(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reason", required=True, help="why (audited)")

    p = cmds.add_parser("issue", help="(branch) issue a card to a customer and print or emboss it")
    p.add_argument("customer", help="customer id")
    p.add_argument("--braille", action="store_true",
                   help="a braille card, embossed (default: a plain printed card)")
    p.add_argument("--layout", choices=sorted(LAYOUTS),
                   help="braille: card-sized faces or pages (default: the configured one)")
    p.add_argument("--svg", metavar="FILE", help="braille: write the masked dot drawing to FILE")
    p.set_defaults(run=_issue)

    p = cmds.add_parser("replace", help="(branch) a new card in place of an old one; the old "
                                        "one stops at once")
    p.add_argument("serial", help="the card being replaced")
    p.add_argument("--medium", choices=sorted(MEDIUMS), help="default: the old card's")
    p.add_argument("--layout", choices=sorted(LAYOUTS))
    p.add_argument("--svg", metavar="FILE")
    with_reason(p)
    p.set_defaults(run=_replace)

    p = cmds.add_parser("reprint", aliases=["re-emboss"],
                        help="(branch) print or emboss an active card again")
    p.add_argument("serial")
    p.add_argument("--layout", choices=sorted(LAYOUTS))
    with_reason(p)
    p.set_defaults(run=_reprint)

    p = cmds.add_parser("revoke", help="(branch) revoke a card for good")
    p.add_argument("serial")
    with_reason(p)
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).RevokeCard(
        pb.RevokeSecurityCardRequest(serial=a.serial, reason=a.reason), timeout=a.timeout),
        card_lines))

    p = cmds.add_parser("reset", help="(branch) clear the wrong answers, lift a restriction "
                                      "(customer present)")
    p.add_argument("serial")
    with_reason(p)
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).ResetCard(
        pb.ResetSecurityCardRequest(serial=a.serial, reason=a.reason), timeout=a.timeout),
        card_lines))

    p = cmds.add_parser("status", help="a card's state, wrong answers and print record")
    p.add_argument("serial")
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).GetCard(
        pb.GetSecurityCardRequest(serial=a.serial), timeout=a.timeout), card_lines))

    p = cmds.add_parser("holder", help="a customer's live card and braille-card exemption")
    p.add_argument("customer", help="customer id")
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).GetHolder(
        pb.GetSecurityCardHolderRequest(customer_id=a.customer), timeout=a.timeout),
        holder_lines))

    p = cmds.add_parser("challenge", help="ask for digits of two codes of a card")
    p.add_argument("serial", nargs="?", help="the card (or give --customer)")
    p.add_argument("--customer", help="the customer whose live card is asked")
    p.set_defaults(run=_challenge)

    p = cmds.add_parser("verify", help="answer a challenge (the digits are asked without echo)")
    p.add_argument("challenge_id")
    add_secret_options(p, "answer", "answer")
    p.set_defaults(run=_verify)
