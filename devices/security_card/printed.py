"""The plain (ink) security card as a print job: UTF-8 text, one page."""

from __future__ import annotations

from devices.security_card.card import SecurityCard

COLUMNS = 5
FORM_FEED = "\f"
NOTICE = (
    "은행이 묻는 번호의 자리 숫자만 입력하십시오. "
    "카드 전체를 입력하거나 알려 주지 마십시오."
)


def printed_card_text(card: SecurityCard) -> str:
    """The card face: title, serial, and the numbered codes in five columns."""
    lines = ["보안카드 (SECURITY CARD)", f"일련번호 {card.serial}", ""]
    entries = [f"{n:02d} {code}" for n, code in card.numbered()]
    width = max(len(e) for e in entries) + 3
    rows = (len(entries) + COLUMNS - 1) // COLUMNS
    for r in range(rows):
        row = [entries[c * rows + r] for c in range(COLUMNS) if c * rows + r < len(entries)]
        lines.append("".join(e.ljust(width) for e in row).rstrip())
    lines += ["", NOTICE]
    return "\r\n".join(lines) + "\r\n" + FORM_FEED


def printed_card_job(card: SecurityCard) -> bytes:
    return printed_card_text(card).encode("utf-8")


def read_printed_card(text: str) -> dict[int, str]:
    """What a sighted holder reads off a printed card: code number -> code."""
    codes: dict[int, str] = {}
    for line in text.replace("\f", "").splitlines():
        words = line.split()
        if len(words) % 2 or not words or not all(w.isdigit() for w in words):
            continue
        for number, code in zip(words[::2], words[1::2], strict=True):
            codes[int(number)] = code
    return codes
