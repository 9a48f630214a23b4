"""authctl cards ... against a real daemon over mTLS, with the embosser simulator."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from authd import pki
from authd.ctl import main as authctl
from authd.security_card.feature import SecurityCardFeature
from devices.security_card.printed import read_printed_card
from simulators.security_card.cardholder import VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator, Fault

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bank(server: Any, tmp_path: Path) -> tuple[Any, Path]:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    return srv, pki_dir


def ctl(capsys: pytest.CaptureFixture[str], bank: tuple[Any, Path], identity: str,
        *args: str, stdin: str | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    srv, pki_dir = bank
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = authctl(["--addr", f"localhost:{srv.port}", "--pki", str(pki_dir),
                    "--identity", identity, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def embosser(bank: tuple[Any, Path]) -> EmbosserSimulator:
    sim: EmbosserSimulator = bank[0].app.require(SecurityCardFeature).simulated["embosser"]
    return sim


def serial_in(out: str) -> str:
    found = re.search(r"Security card (\S+) \(", out)
    assert found, out
    return found.group(1)


def start_challenge(capsys: Any, bank: Any, serial: str) -> dict[str, Any]:
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "--json", "cards", "challenge", serial)
    assert code == 0
    challenge: dict[str, Any] = json.loads(out)
    return challenge


def printed_answer(bank: Any, ch: dict[str, Any]) -> str:
    """The right answer to ``ch``, read off the last plain card the printer printed."""
    printer: EmbosserSimulator = bank[0].app.require(SecurityCardFeature).simulated["printer"]
    codes = read_printed_card(printer.last_job().data.decode())
    return "".join(codes[part["code_number"]][p - 1]
                   for part in (ch["first"], ch["second"]) for p in part["digit_positions"])


def wrong(answer: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in answer)


def test_braille_card_from_issue_to_reset(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                          bank: Any, tmp_path: Path) -> None:
    svg = tmp_path / "card.svg"
    code, out, err = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "cust-ctl-1",
                         "--braille", "--svg", str(svg))
    assert code == 0, err
    serial = serial_in(out)
    assert f"Security card {serial} (braille, card layout): active" in out
    assert "customer cust-ctl-1, 35 codes of 4 digits" in out
    assert re.search(r"print job \S+: completed on socket://127\.0\.0\.1:\d+, 2 page\(s\)", out)
    assert "every code masked" in out and "⠼⠿⠿⠿⠿" in out
    assert svg.read_text().startswith("<svg")
    holder = VirtualCardholder(embosser(bank).last_job().data)
    assert len(holder.card.codes) == 35
    printed = [f"{n:02d}: {c}" for n, c in holder.card.codes.items()]
    assert not any(entry in out for entry in printed)

    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "holder", "cust-ctl-1")
    assert code == 0
    assert f"Customer cust-ctl-1: live card {serial}" in out
    assert "braille-card user: yes" in out and "14(1)6" in out

    # the readable challenge, answered from the embossed dots, piped in
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "challenge", "--customer",
                       "cust-ctl-1")
    assert code == 0 and f"for card {serial} (braille card)" in out
    challenge_id = re.search(r"Challenge ([0-9a-f]{32}) ", out).group(1)  # type: ignore[union-attr]
    prompt = re.search(r"prompt:  (.+)", out).group(1)  # type: ignore[union-attr]
    assert prompt.startswith("보안카드 번호 ") and "braille: ⠘" in out
    answer = holder.answer_prompt(prompt)
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "verify", challenge_id,
                       "--answer-stdin", stdin=answer + "\n", monkeypatch=monkeypatch)
    assert code == 0 and out.startswith("ACCEPTED: ")
    assert "consecutive wrong answers 0, attempts left 3" in out
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "verify", challenge_id,
                       "--answer-stdin", stdin=answer, monkeypatch=monkeypatch)
    assert code == 3 and out.startswith("CHALLENGE USED: ")

    # three wrong answers restrict the card; only a teller resets it
    for attempt in range(1, 4):
        ch = start_challenge(capsys, bank, serial)
        code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "verify",
                           ch["challenge_id"], "--answer-stdin",
                           stdin=wrong(holder.answer_prompt(ch["prompt_text"])),
                           monkeypatch=monkeypatch)
        assert code == 3 and out.startswith("WRONG ANSWER: ")
        assert f"consecutive wrong answers {attempt}, attempts left {3 - attempt}" in out
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "status", serial)
    assert code == 0 and f"{serial} (braille, card layout): restricted" in out
    assert "consecutive wrong answers 3 of 3, attempts left 0" in out
    code, _, err = ctl(capsys, bank, "bank-a-backend", "cards", "challenge", serial)
    assert code == 1 and err.startswith("authctl: FAILED_PRECONDITION: ")

    code, _, err = ctl(capsys, bank, "bank-a-backend", "cards", "reset", serial,
                       "--reason", "ID checked")
    assert code == 1 and "PERMISSION_DENIED" in err
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "reset", serial,
                       "--reason", "ID checked")
    assert code == 0 and ": active" in out and "consecutive wrong answers 0 of 3" in out

    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "re-emboss", serial,
                       "--reason", "first print jammed")
    assert code == 0 and "embossed 2 time(s), last: completed" in out

    code, out, _ = ctl(capsys, bank, "bank-a-teller", "audit", serial)
    assert "security_card.reset" in out and "security_card.reprint" in out
    assert not any(entry in out for entry in printed)


def test_replace_revoke_and_a_failed_print(capsys: Any, bank: Any) -> None:
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "cust-ctl-2")
    assert code == 0 and "(plain): active" in out
    old = serial_in(out)

    embosser(bank).set_fault(Fault.PAPER_JAM)
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "replace", old, "--medium",
                       "braille", "--reason", "customer lost sight")
    assert code == 3
    assert out.startswith(f"{old} is replaced; the new card:")
    new = serial_in(out)
    assert "PRINT FAILED: paper jam" in out and f"authctl cards reprint {new}" in out
    embosser(bank).set_fault(Fault.NONE)
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "reprint", new,
                       "--reason", "jam cleared")
    assert code == 0 and "last: completed" in out

    code, out, _ = ctl(capsys, bank, "bank-a-teller", "--json", "cards", "status", old)
    status = json.loads(out)
    assert status["state"] == "SECURITY_CARD_STATE_REPLACED" and status["replaced_by"] == new
    assert status["failures"] == 0 and status["braille_card_user"] is False
    assert set(status) == {"serial", "customer_id", "medium", "state", "failures",
                           "max_failures", "attempts_left", "code_count", "code_digits",
                           "issued_at", "updated_at", "replaces", "replaced_by", "print_count",
                           "last_print_state", "braille_card_user", "layout"}
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "revoke", new,
                       "--reason", "closed account")
    assert code == 0 and f"{new} (braille, card layout): revoked" in out
    assert f"replaces {old}" in out
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "holder", "cust-ctl-2")
    assert "no live card" in out and "braille-card user: no" in out

    # another institution does not see the card
    code, _, err = ctl(capsys, bank, "bank-b-teller", "cards", "status", new)
    assert code == 1 and "NOT_FOUND" in err


def test_bad_input_is_refused_clearly(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                      bank: Any, tmp_path: Path) -> None:
    code, _, err = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "no spaces allowed")
    assert code == 1 and err.startswith("authctl: INVALID_ARGUMENT: customer_id")
    code, _, err = ctl(capsys, bank, "bank-a-backend", "cards", "challenge")
    assert code == 2 and "name the card: a SERIAL or --customer ID" in err
    code, _, err = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "cust-ctl-3",
                       "--braille", "--svg", str(tmp_path / "missing-dir" / "x.svg"))
    assert code == 2 and "not a file in an existing directory" in err
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "holder", "cust-ctl-3")
    assert "no live card" in out  # nothing was issued

    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "cust-ctl-3")
    ch = start_challenge(capsys, bank, serial_in(out))
    code, _, err = ctl(capsys, bank, "bank-a-backend", "cards", "verify", ch["challenge_id"],
                       "--answer-stdin", stdin="12a4\n", monkeypatch=monkeypatch)
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, _, err = ctl(capsys, bank, "bank-a-backend", "cards", "verify", ch["challenge_id"],
                       "--answer-stdin", stdin="", monkeypatch=monkeypatch)
    assert code == 2 and "must hold answer" in err
    # the malformed answers did not use the challenge up, nor count as wrong
    answer_file = tmp_path / "answer"
    answer_file.write_text(printed_answer(bank, ch) + "\n")
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "verify", ch["challenge_id"],
                       "--answer-file", str(answer_file))
    assert code == 0 and out.startswith("ACCEPTED: ")
    assert "consecutive wrong answers 0" in out

    with pytest.raises(SystemExit):
        authctl(["cards", "issue", "x", "--layout", "round"])
    assert "invalid choice: 'round'" in capsys.readouterr().err


def test_answer_is_never_read_from_a_terminal_that_echoes(bank: Any) -> None:
    """Without a controlling terminal and without --answer-stdin, authctl refuses rather than
    reading the answer with echo."""
    srv, pki_dir = bank
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "authd.ctl", "--addr", f"localhost:{srv.port}", "--pki",
         str(pki_dir), "--identity", "bank-a-backend", "cards", "verify", "0" * 32],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=ROOT,
        start_new_session=True, timeout=60)
    assert done.returncode == 2
    assert "no terminal to ask for the answer without echo: use --answer-stdin" in done.stderr


def test_answer_is_asked_without_echo_on_a_terminal(capsys: Any,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    bank: Any) -> None:
    asked: list[str] = []
    code, out, _ = ctl(capsys, bank, "bank-a-teller", "cards", "issue", "cust-ctl-4")
    serial = serial_in(out)
    ch = start_challenge(capsys, bank, serial)
    answer = printed_answer(bank, ch)

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return answer

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    code, out, _ = ctl(capsys, bank, "bank-a-backend", "cards", "verify", ch["challenge_id"])
    assert asked == ["answer: "]
    assert code == 0 and out.startswith("ACCEPTED: ")
    # never echoed (the card's serial may hold the same four digits by chance)
    assert answer not in out.replace(serial, "")
