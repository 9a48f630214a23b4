"""A certificate issued onto the virtual PIV card through pcscd: the key generated on the
card, the CSR signed by the card with the PIN, the certificate in the signature slot; the
card's signature is refused once the certificate is revoked."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authd.errors import details_of
from authd.v1 import certificate_pb2 as cpb
from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc
from tests.certificate_env import CaEnv, Teller, ca_env, use_clock
from tests.conftest import wait_for
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    running_pcscd,
)

READER = READERS[0]
PIN = "123456"


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CaEnv]:
    with ca_env(tmp_path) as env:
        yield env


def test_issue_onto_the_card_sign_then_revoked(server: Any, ca: CaEnv, card: Any) -> None:
    srv = server(certificate=ca.settings())
    use_clock(srv, ca.clock)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "t"))
    wait_for(lambda: any(r.name == READER and r.card_present
                         for r in cards.ListReaders(pb.ListReadersRequest()).readers))
    teller = Teller(srv)
    cert = teller.issue({"smartcard": cpb.SmartcardStorage(reader=READER, pin=PIN)})
    assert cert.storage == cpb.STORAGE_LOCATION_SMARTCARD and cert.location.startswith("card:")
    status = cards.GetPivStatus(pb.CardRequest(reader=READER))
    on_card = [c for c in status.certificates if c.slot == pb.PIV_SLOT_SIGNATURE]
    assert on_card and on_card[0].der == cert.der  # stored next to its key

    def sign() -> pb.SignResponse:
        return cards.Sign(pb.SignRequest(reader=READER, slot=pb.PIV_SLOT_SIGNATURE,
                                         algorithm=pb.KEY_ALGORITHM_EC_P256, pin=PIN,
                                         message=b"login challenge 41"))

    signed = sign()
    public = x509.load_der_x509_certificate(cert.der).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signed.signature, b"login challenge 41", ec.ECDSA(hashes.SHA256()))
    teller.certs.RevokeCertificate(cpb.RevokeCertificateRequest(
        serial=cert.serial, reason=cpb.REVOCATION_REASON_KEY_LOST, operator="kim"))
    with pytest.raises(grpc.RpcError) as refused:
        sign()
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(refused.value).reason == "CERTIFICATE_REVOKED"
