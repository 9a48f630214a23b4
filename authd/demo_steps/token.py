"""Demo step: a teller issues a certificate onto a customer's HSM security token.

The customer's token is inserted (SoftHSM2 simulator plug), the teller's terminal logs in with
the customer's PIN, generates a key pair on the token, creates a CSR signed by the token, has it
issued by a (demo) CA, imports the certificate next to the key and registers the token at the
branch (recorded at the center). The internet-banking backend then asks the center and sees the
token as exempt from additional authentication (DOMAIN §5), and verifies a login challenge
signed on the token.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authd.v1 import customer_pb2, customer_pb2_grpc, token_pb2_grpc
from authd.v1 import token_pb2 as pb
from simulators.token.softhsm import SoftHsmEnvironment

CUSTOMER_PIN = "246810"


class Issuer(Protocol):
    def issue(self, csr_der: bytes) -> bytes: ...


@dataclass
class TokensDemoContext:
    branch_channel: grpc.Channel  # a teller terminal (branch role) of the customer's bank
    backend_channel: grpc.Channel  # the same bank's internet-banking backend (backend role)
    softhsm: SoftHsmEnvironment  # the daemon's SoftHSM2 environment (same token directory)
    ca: Issuer  # the CA the daemon trusts (the CA simulator)
    say: Callable[[str], None] = print
    customer_id: str = "A-0001042"  # the bank's reference of the customer (as in the OTP step)
    customer_name: str = "Hong Gildong"
    institution: str = "bank-a"
    operator: str = "teller-kim"


def _wait_inserted(events: queue.Queue[pb.TokenEvent], serial: str, timeout: float) -> bool:
    """Whether authd reports ``serial`` inserted within ``timeout`` (a PRESENT event is what
    authd knew before: not the insertion)."""
    while True:
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            return False
        if event.token.serial == serial and event.kind == pb.TokenEvent.INSERTED:
            return True


def _wait_absent(teller: token_pb2_grpc.TokenServiceStub, serial: str, timeout: float) -> bool:
    """Whether authd stops listing ``serial`` within ``timeout``: a token it saw while it was
    being made (in the reader) is gone from its view before it is inserted for real."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = teller.ListTokens(pb.ListTokensRequest(), timeout=10).tokens
        if all(t.serial != serial for t in listed):
            return True
        time.sleep(0.1)
    return False


def run(ctx: TokensDemoContext) -> None:
    teller = token_pb2_grpc.TokenServiceStub(ctx.branch_channel)
    center = customer_pb2_grpc.BranchRegistrationServiceStub(ctx.backend_channel)
    say = ctx.say

    # 1. the customer's token: a blank token from the factory, not yet in the reader
    token = ctx.softhsm.init_token(f"hong-{secrets.token_hex(3)}", CUSTOMER_PIN)
    ctx.softhsm.unplug(token)
    _wait_absent(teller, token.serial, timeout=15)
    events: queue.Queue[pb.TokenEvent] = queue.Queue()
    watch = teller.WatchTokens(pb.WatchTokensRequest())

    def read() -> None:
        try:
            for event in watch:
                events.put(event)
        except grpc.RpcError:
            pass

    threading.Thread(target=read, name="demo-token-watch", daemon=True).start()
    say(f"The teller inserts {ctx.customer_name}'s security token (serial {token.serial}).")
    ctx.softhsm.plug(token)
    if _wait_inserted(events, token.serial, timeout=15):
        say("  authd reports the token inserted.")
    watch.cancel()

    # 2. log in with the customer's PIN (typed by the customer on the PIN pad)
    login = teller.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=CUSTOMER_PIN))
    session = login.session
    say(
        f"  Logged in to token {login.token.label!r}; the session ends after "
        f"{login.idle_timeout_seconds} s idle."
    )

    # 3. key pair on the token, CSR signed by it, certificate from the CA
    key = teller.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(
            session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="signing key"
        )
    )
    say(
        f"  Generated an EC P-256 key pair on the token (id {key.key_id.hex()}, "
        f"extractable: {key.extractable})."
    )
    subject = f"CN={ctx.customer_name},OU=personal,O={ctx.institution},C=KR"
    csr = teller.CreateCsr(
        pb.TokenCreateCsrRequest(session=session, key_id=key.key_id, subject=subject)
    )
    say(f"  Created a certificate request for {subject}, signed on the token.")
    certificate_der = ctx.ca.issue(csr.csr_der)
    cert = teller.ImportCertificate(
        pb.TokenImportCertificateRequest(session=session, certificate=certificate_der)
    )
    state = pb.TokenRenewalState.Name(cert.renewal).removeprefix("TOKEN_RENEWAL_")
    say(
        f"  Imported the certificate issued by {cert.issuer} next to the key; state "
        f"{state}, renewable from {cert.renewable_from[:10]} "
        f"until {cert.renewable_until} (Korean time)."
    )

    # 4. register the token at the branch: transfers with it need no additional authentication
    check = customer_pb2.CheckExemptionRequest(kind=customer_pb2.MEDIUM_KIND_HSM_TOKEN,
                                               serial=token.serial, customer_id=ctx.customer_id)
    before = center.CheckExemption(check)
    reg = teller.RegisterToken(
        pb.RegisterTokenRequest(session=session, customer_id=ctx.customer_id, operator=ctx.operator)
    )
    after = center.CheckExemption(check)
    say(
        f"  Registered the token at the branch for customer {reg.customer_id} (terminal "
        f"{reg.terminal}, operator {reg.operator}); the center records it. Backend asks the "
        f"center: exempt before {before.exempt}, after {after.exempt} ({after.reason})."
    )

    # 5. the backend's login challenge, signed on the token, verified by the backend
    challenge = secrets.token_bytes(32)
    signed = teller.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=challenge))
    public = x509.load_der_x509_certificate(cert.der).public_key()
    try:
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        public.verify(signed.signature, challenge, ec.ECDSA(hashes.SHA256()))
        say("  The backend verified the signed login challenge with the certificate's key.")
    except InvalidSignature:
        say("  The backend could NOT verify the signed login challenge.")
        raise
    teller.Logout(pb.TokenLogoutRequest(session=session))
    say("  The teller logs out; the token goes home with the customer.")
