"""Users of one token in one process share its login: closing one never logs the others out.

PKCS#11 logs in per application, and python-pkcs11 logs out when it closes a session opened
with a PIN; without the shared login (drivers/pkcs11/login.py), the first user of the
key-encryption-key token to close its key (the audit signer at stop, a check of the token)
left every other key handle of the process invalid."""

from __future__ import annotations

from typing import Any

import pkcs11
import pytest

from authd.config import SOFTHSM_MODULE
from authd.system.feature import SystemFeature
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from drivers.errors import DriverError
from drivers.kek_token import TokenKek
from drivers.token_signer import TokenSigningKey
from tests.conftest import KEK_PIN_FILE

TOKEN = "authd-kek"


def _pin() -> str:
    return KEK_PIN_FILE.read_text().strip()


def test_closing_one_key_leaves_the_others_working(server: Any) -> None:
    server().stop()  # the session's key-encryption-key token exists; nobody is logged in
    first = TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-a", _pin())
    second = TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-b", _pin())
    signer = TokenSigningKey(SOFTHSM_MODULE, TOKEN, "login-test-sign", _pin())
    sealed = second.encrypt(b"seed", b"aad")
    first.close()
    assert second.decrypt(sealed, b"aad") == b"seed"
    assert signer.sign(bytes(32))
    second.close()
    assert signer.sign(bytes(32))  # the last user still holds the login
    signer.close()


def test_a_wrong_pin_is_refused_while_the_token_is_logged_in(server: Any) -> None:
    server()
    held = TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-a", _pin())
    try:
        with pytest.raises(DriverError, match="wrong PIN"):
            TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-a", _pin() + "0")
        with pytest.raises(DriverError, match="wrong PIN"):
            TokenSigningKey(SOFTHSM_MODULE, TOKEN, "login-test-sign", "0" + _pin())
    finally:
        held.close()


def test_a_daemon_goes_on_after_another_user_of_its_token_closes(server: Any) -> None:
    server().stop()
    first = server()  # logs the process in to the token
    srv = server()
    TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-a", _pin()).close()
    TokenSigningKey(SOFTHSM_MODULE, TOKEN, "login-test-sign", _pin()).close()
    first.stop()  # its audit signer and key-encryption key close
    otp = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    enrolled = otp.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-LOGIN-1",
                                          operator_id="op",
                                          parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)),
                          timeout=30)  # seals a seed with the key-encryption key
    assert enrolled.device.serial == "OTP-LOGIN-1"
    sealer = srv.app.require(SystemFeature).sealer
    assert sealer is not None
    assert sealer.sealer.signer.sign(bytes(32))  # the daemon's audit key on the same token


def test_the_process_is_logged_out_when_the_last_user_closes(server: Any) -> None:
    srv = server()
    srv.stop()
    key = TokenKek(SOFTHSM_MODULE, TOKEN, "login-test-a", _pin())
    key.close()
    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=TOKEN)
    with token.open() as session:  # logged out: private objects are not visible
        assert not list(session.get_objects({pkcs11.Attribute.LABEL: "login-test-a"}))
