"""The smartcard as a PKCS#11 token: authd's token API on the virtual PIV card through OpenSC's
module, exactly as on an HSM token (the daemon runs as its own process, so OpenSC's hold on the
card ends with it)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from devices.smartcard.piv import KeyType, PivSession, Slot
from drivers.pcsc.connection import PcscConnection
from simulators.smartcard import DEFAULT_PIN, VirtualCardSlot
from simulators.smartcard.issuer import CardIssuer
from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import Node
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    opensc_module,
    pcscd,
    require_opensc,
    running_pcscd,
)


@pytest.fixture(autouse=True)
def _opensc() -> None:
    require_opensc()


CHALLENGE = b"login challenge 7c1e for internet banking"


@pytest.fixture
def issued_card(card: VirtualCardSlot) -> x509.Certificate:
    with PcscConnection(READERS[0]) as connection:
        piv = PivSession(connection)
        piv.authenticate()
        cert = CardIssuer().issue(piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256),
                                  "Hong Gildong")
        piv.put_certificate(Slot.AUTHENTICATION, cert)
    return cert


def test_token_api_signs_on_the_smartcard(issued_card: x509.Certificate, tmp_path: Path):
    make_config(tmp_path / "cfg")  # the session's KEK PIN file
    node = Node(tmp_path / "node", f"sqlite:///{tmp_path / 'authd.db'}", {
        "AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE),
        "AUTHD_TOKEN__MODULES": json.dumps([opensc_module()]),
    })
    try:
        stub = token_pb2_grpc.TokenServiceStub(node.channel("bank-a", "branch", "teller-1"))
        deadline = time.monotonic() + 15
        tokens: list[pb.SecurityToken] = []
        seen: list[pb.SecurityToken] = []
        while time.monotonic() < deadline and not tokens:
            seen = list(stub.ListTokens(pb.ListTokensRequest(), timeout=30).tokens)
            tokens = [t for t in seen if t.module.endswith("opensc-pkcs11.so")]
            if not tokens:
                time.sleep(0.3)
        assert tokens, f"the card did not appear as a PKCS#11 token: {seen}"
        token = tokens[0]

        with pytest.raises(grpc.RpcError) as err:
            stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="000000"), timeout=30)
        assert "attempt" in (err.value.details() or "").lower()

        session = stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=DEFAULT_PIN),
                             timeout=30).session
        objects = stub.ListObjects(pb.TokenListObjectsRequest(session=session), timeout=30)
        certs = [c for c in objects.certificates if "Hong Gildong" in c.subject]
        assert certs, [c.subject for c in objects.certificates]
        key_id = certs[0].key_id
        assert any(k.key_id == key_id and k.has_private_key and not k.extractable
                   for k in objects.keys)

        signed = stub.Sign(pb.TokenSignRequest(session=session, key_id=key_id,
                                               algorithm=pb.TOKEN_SIGN_ECDSA_SHA256,
                                               digest=hashlib.sha256(CHALLENGE).digest()),
                           timeout=30)
        public = issued_card.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signed.signature, CHALLENGE, ec.ECDSA(hashes.SHA256()))
        stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    finally:
        node.terminate()
