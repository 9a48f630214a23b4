"""The README's demo command runs end to end (the smartcard step has its own test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_branch_scenario(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "authd.demo", "--data-dir",
                           str(tmp_path / "demo"), "--skip", "smartcard"],
                          capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Demo: 7 step(s) passed, 0 failed" in out
    assert "The next login signature is refused: FAILED_PRECONDITION CERTIFICATE_REVOKED" in out
    # transfer decisions: approved, additional authentication, the general grade, one answer
    assert "ADDITIONAL AUTHENTICATION REQUIRED" in out and "[over_daily_limit]" in out
    assert "[same_idempotency_key]" in out and "used 9,000,000 KRW today" in out
    assert out.count("LOCKED: The OTP is locked") == 3  # a right code refused at A, B and C
    assert "REPORTED LOST" in out and "IDENTIFIED" in out
    assert "SECURITY_CARD_OUTCOME_ACCEPTED" in out
    # bank-a's customer holds the OTP (reported lost), the HID device and the token; bank-b
    # learns nothing under bank-a's reference
    media = out[out.index("[customers]"):]
    assert "otp OTP-DEMO-0001: reported lost" in media and "otp HID-" in media
    assert "hsm token " in media and "registered at a branch" in media
    assert "nothing (another institution's reference)" in media
    assert "authd exited with status 0" in out


def test_split_demo_runs_the_same_day_over_a_center_and_two_branch_nodes(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "authd.demo", "--split", "--data-dir",
                           str(tmp_path / "demo"), "--skip", "smartcard"],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Demo: 0 step(s)" not in out and ", 0 failed" in out
    assert "bank-a's branch node (certificate O=bank-a, OU=branch" in out
    assert out.count("LOCKED: The OTP is locked") == 3  # locked at A, B and C
    assert "IDENTIFIED" in out and "SECURITY_CARD_OUTCOME_ACCEPTED" in out
    assert "ADDITIONAL AUTHENTICATION REQUIRED" in out
    assert "through the other center node" in out
    # the token registered at bank-a's branch node is asked of the center by the backend;
    # the certificate's OTP is checked at the center
    assert "the center records it. Backend asks the center: exempt before False, after True" \
        in out
    assert "The next login signature is refused: FAILED_PRECONDITION CERTIFICATE_REVOKED" in out
    media = out[out.index("[customers]"):]
    assert "hsm token " in media and "registered at a branch" in media
    assert "Demo: 8 step(s) passed, 0 failed" in out
    for node in ("center-1", "branch-bank-a", "branch-bank-b"):
        assert f"{node} exited with status 0" in out
