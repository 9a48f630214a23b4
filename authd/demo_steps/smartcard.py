"""Demo step: a teller inserts a customer's smartcard, sets up its key and certificate, signs.

The card is the virtual PIV card (simulators.smartcard) in vpcd reader 0 of the demo's own
pcscd (`start_readers`, started before the daemon so that the daemon inherits its socket; it
never touches a system pcscd).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc
from simulators.smartcard import PcscdError, PrivatePcscd, open_slot
from simulators.smartcard.issuer import CardIssuer
from simulators.smartcard.pcscd import missing_reason


@dataclass
class SmartcardDemoContext:
    branch_channel: grpc.Channel  # carries a branch-role caller (a teller terminal)
    say: Callable[[str], None]
    work_dir: Path  # the virtual card's state file lives here
    vpcd_port: int  # reader 0 of the pcscd the daemon talks to
    reader: str = "Virtual PCD 00 00"
    customer: str = "Hong Gildong"


def start_readers(root: Path) -> PrivatePcscd | str:
    """The demo's own pcscd, made this process's (and its children's) PC/SC service;
    or why it cannot run here."""
    reason = missing_reason()
    if reason:
        return reason
    pcscd = PrivatePcscd(root)
    try:
        pcscd.start()
    except PcscdError as exc:
        return str(exc)
    pcscd.activate()
    return pcscd


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the smartcard reader did not reach the expected state")
        time.sleep(0.1)


def run(ctx: SmartcardDemoContext) -> None:
    cards = smartcard_pb2_grpc.SmartcardServiceStub(ctx.branch_channel)
    card = open_slot(ctx.work_dir / "customer-smartcard.json", ctx.vpcd_port)

    def present() -> bool:
        try:
            readers = cards.ListReaders(pb.ListReadersRequest()).readers
        except grpc.RpcError:
            return False
        return any(r.name == ctx.reader and r.card_present for r in readers)

    try:
        card.insert(timeout=10)

        _wait(present)
        info = cards.GetCardInfo(pb.CardRequest(reader=ctx.reader))
        applets = ", ".join(a.name for a in info.applets)
        ctx.say(
            f"teller inserts {ctx.customer}'s smartcard in '{ctx.reader}': ATR"
            f" {info.atr.hex()}, applets: {applets}"
        )
        status = cards.GetPivStatus(pb.CardRequest(reader=ctx.reader))
        ctx.say(
            f"card {status.guid.hex()}: PIN attempts left {status.pin_attempts_remaining},"
            f" {len(status.certificates)} certificate(s)"
        )

        generated = cards.GenerateKey(
            pb.GenerateKeyRequest(
                reader=ctx.reader, slot=pb.PIV_SLOT_SIGNATURE, algorithm=pb.KEY_ALGORITHM_EC_P256
            )
        )
        public_key = serialization.load_der_public_key(generated.public_key_der)
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        ctx.say(
            "a P-256 key pair is generated on the card in slot 9C (the private key never leaves it)"
        )
        certificate = CardIssuer("demo bank CA").issue(public_key, ctx.customer)
        imported = cards.ImportCertificate(
            pb.ImportCertificateRequest(
                reader=ctx.reader,
                slot=pb.PIV_SLOT_SIGNATURE,
                certificate_der=certificate.public_bytes(serialization.Encoding.DER),
            )
        )
        ctx.say(
            f"the bank's certificate for {imported.certificate.subject} is stored on the card"
            f" (valid until {imported.certificate.not_after[:10]})"
        )

        wrong = cards.Sign(
            pb.SignRequest(
                reader=ctx.reader,
                slot=pb.PIV_SLOT_SIGNATURE,
                algorithm=pb.KEY_ALGORITHM_EC_P256,
                pin="000000",
                message=b"x",
            )
        )
        ctx.say(
            f"a mistyped PIN signs nothing: {pb.PinResult.Outcome.Name(wrong.pin.outcome)},"
            f" {wrong.pin.attempts_remaining} attempts left"
        )
        challenge = b"login challenge 2f9c41 for internet banking"
        signed = cards.Sign(
            pb.SignRequest(
                reader=ctx.reader,
                slot=pb.PIV_SLOT_SIGNATURE,
                algorithm=pb.KEY_ALGORITHM_EC_P256,
                pin="123456",
                message=challenge,
            )
        )
        cert_key = x509.load_der_x509_certificate(imported.certificate.der).public_key()
        assert isinstance(cert_key, ec.EllipticCurvePublicKey)
        cert_key.verify(signed.signature, challenge, ec.ECDSA(hashes.SHA256()))
        ctx.say(
            "the customer types the PIN and the card signs the login challenge; the signature"
            " verifies against the certificate (PIN attempts back to"
            f" {signed.pin.attempts_remaining})"
        )
    finally:
        card.remove()
        ctx.say("the customer takes the card back")
        try:
            _wait(lambda: not present(), timeout=5)
        except TimeoutError:
            pass
