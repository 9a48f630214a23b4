"""Smartcards registered at a branch: the customer verifies the PIN on the card in the
terminal's reader, the center records the card for the institution's customer; through a real
gRPC channel on pcscd + vpcd + the virtual PIV card, on SQLite and PostgreSQL. A card
registered at another institution gets the answers of a card registered nowhere."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from authd.v1 import (
    customer_pb2,
    customer_pb2_grpc,
    smartcard_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)
from authd.v1 import smartcard_pb2 as pb
from simulators.smartcard import VirtualCardSlot
from tests.answers import answer_of
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    CardFactory,
    Pcscd,
    card,
    card_factory,
    pcscd,
    running_pcscd,
)

PIN = "123456"
FRESH = {"id", "registered_at"}


def guid_of(slot: VirtualCardSlot) -> str:
    """What RegisterCard records: the CHUID GUID of the virtual card, in hex."""
    return ("00" * 8 + slot.card.state.serial.rjust(16, "0")).upper()


class Teller:
    def __init__(self, srv: Any, institution: str) -> None:
        self.cards = smartcard_pb2_grpc.SmartcardServiceStub(
            srv.channel(institution, "branch", "teller-1"))
        self.center = customer_pb2_grpc.BranchRegistrationServiceStub(
            srv.channel(institution, "backend", "ib"))
        self.customers = customer_pb2_grpc.CustomerServiceStub(
            srv.channel(institution, "backend", "ib"))

    def register(self, reader: str = READERS[0], pin: str = PIN, customer: str = "C-1",
                 **fields: Any) -> pb.RegisterCardResponse:
        fields.setdefault("operator_id", "kim")
        return self.cards.RegisterCard(pb.RegisterCardRequest(
            reader=reader, pin=pin, customer_id=customer, **fields))

    def pin_attempts(self, reader: str = READERS[0]) -> int:
        return self.cards.GetPivStatus(pb.CardRequest(reader=reader)).pin_attempts_remaining


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_register_a_card_at_the_branch(server: Any, request: pytest.FixtureRequest,
                                       store: str, card: VirtualCardSlot) -> None:
    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    t = Teller(server(store_url=store_url), "bank-a")
    guid = guid_of(card)
    # A wrong PIN records nothing and counts on the card.
    wrong = t.register(pin="000000")
    assert wrong.pin.outcome == pb.PinResult.WRONG and wrong.pin.attempts_remaining == 2
    assert not wrong.HasField("registration")
    check = customer_pb2.CheckExemptionRequest(kind=customer_pb2.MEDIUM_KIND_SMARTCARD,
                                               serial=guid, customer_id="C-1")
    assert t.center.CheckExemption(check).outcome == \
        customer_pb2.EXEMPTION_OUTCOME_NOT_REGISTERED
    # A bad request is refused before the PIN is tried.
    for fields in ({"customer": ""}, {"customer": "C 1"}, {"operator_id": ""}):
        with pytest.raises(grpc.RpcError) as err:
            t.register(**fields)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert t.pin_attempts() == 2

    done = t.register(terminal="T-5")
    assert done.pin.outcome == pb.PinResult.OK and done.pin.attempts_remaining == 3
    reg = done.registration
    assert (reg.kind, reg.serial, reg.customer_id, reg.institution, reg.terminal, reg.active) \
        == (customer_pb2.MEDIUM_KIND_SMARTCARD, guid, "C-1", "bank-a", "T-5", True)
    # The center knows it: registered at a branch (not exempt: EFT art. 14(1)6 names tokens).
    answer = t.center.CheckExemption(check)
    assert answer.outcome == customer_pb2.EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT
    assert answer.registration == reg
    (medium,) = t.customers.ListCustomerMedia(customer_pb2.ListCustomerMediaRequest(
        customer_id="C-1")).media
    assert (medium.kind, medium.serial, medium.branch_registered) == (
        customer_pb2.MEDIUM_KIND_SMARTCARD, guid, True)
    # Registered once per institution: the same card again is ALREADY_EXISTS.
    with pytest.raises(grpc.RpcError) as err:
        t.register()
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # Deregistered by its serial, without the card (a lost card): lower-case hex is the same.
    ended = t.cards.DeregisterCard(pb.DeregisterCardRequest(
        card_serial=guid.lower(), customer_id="C-1", operator_id="kim", reason="lost"))
    assert ended.id == reg.id and not ended.active
    assert t.center.CheckExemption(check).outcome == \
        customer_pb2.EXEMPTION_OUTCOME_NOT_REGISTERED
    with pytest.raises(grpc.RpcError) as err:
        t.cards.DeregisterCard(pb.DeregisterCardRequest(
            card_serial=guid, customer_id="C-1", operator_id="kim", reason="lost"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def without_fresh(answer: tuple[str, str, str]) -> tuple[str, str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in FRESH}
        return value

    code, details, fields = answer
    return code, details, strip(json.loads(fields)) if fields else ""


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_card_registered_elsewhere_looks_unregistered(
        server: Any, request: pytest.FixtureRequest, store: str,
        card_factory: CardFactory) -> None:
    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    srv = server(store_url=store_url)
    elsewhere, nowhere = card_factory(0, "elsewhere"), card_factory(1, "nowhere")
    a, b = Teller(srv, "bank-a"), Teller(srv, "bank-b")
    assert a.register(READERS[0]).HasField("registration")
    cards = {READERS[0]: guid_of(elsewhere), READERS[1]: guid_of(nowhere)}

    def hidden(reader: str) -> list[str]:
        return [reader, cards[reader], cards[reader].lower()]

    probes = {
        "DeregisterCard": lambda reader: b.cards.DeregisterCard(pb.DeregisterCardRequest(
            card_serial=cards[reader], customer_id="C-1", operator_id="lee", reason="x")),
        # last: it registers both cards at bank-b
        "RegisterCard": lambda reader: b.register(reader, customer="B-1", operator_id="lee"),
    }
    for name, call in probes.items():
        seen, fresh = (without_fresh(answer_of(lambda r=reader, c=call: c(r), hide=hidden(reader)))
                       for reader in READERS)
        assert seen == fresh, name
        assert seen[0] == ("OK" if name == "RegisterCard" else "NOT_FOUND"), (name, seen)
        assert "bank-a" not in str(seen)
    # Bank-a's registration stands; bank-b's audit of both cards looks the same.
    check = customer_pb2.CheckExemptionRequest(kind=customer_pb2.MEDIUM_KIND_SMARTCARD,
                                               serial=cards[READERS[0]], customer_id="C-1")
    assert a.center.CheckExemption(check).registration.institution == "bank-a"
    audit = system_pb2_grpc.SystemServiceStub(srv.channel("bank-b", "branch", "teller-1"))
    trails = [[(e.institution, e.action, e.outcome) for e in audit.ListAudit(
        system_pb2.ListAuditRequest(target=f"smartcard:{guid}")).entries]
        for guid in cards.values()]
    assert trails[0] == trails[1] == [("bank-b", "smartcard.register", "ok")]


# --------------------------------------------------------------------------- the card's key


def _certificate_for(public_key_der: bytes, name: str) -> bytes:
    """A certificate (DER) over a public key, issued by a throwaway CA, as the bank's CA
    would issue it for the card's key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    public_key = serialization.load_der_public_key(public_key_der)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
            .not_valid_before(datetime.datetime(2025, 1, 1))
            .not_valid_after(datetime.datetime(2035, 1, 1))
            .sign(ca, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


SIG = pb.PIV_SLOT_SIGNATURE
P256 = pb.KEY_ALGORITHM_EC_P256


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_card_registered_with_its_key_signs_a_transfer(
        server: Any, request: pytest.FixtureRequest, store: str, card: VirtualCardSlot) -> None:
    """The whole way on the virtual PIV card: a key generated on the card in 9C, its
    certificate imported, the card registered with key_slot 9C (the card signs a challenge
    first), the order signed on the card; the decision checks it against the key recorded
    with the registration, and a forged signature is refused."""
    from authd.v1 import policy_pb2 as P
    from devices.policy.orders import Channel, Order, Purpose, Receiving
    from tests.policy_bank import NEW_PC, Bank, codes_of

    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    srv = server(store_url=store_url)
    t = Teller(srv, "bank-a")
    generated = t.cards.GenerateKey(pb.GenerateKeyRequest(reader=READERS[0], slot=SIG,
                                                          algorithm=P256))
    t.cards.ImportCertificate(pb.ImportCertificateRequest(
        reader=READERS[0], slot=SIG,
        certificate_der=_certificate_for(generated.public_key_der, "C-7")))
    bank = Bank(srv)
    bank.customer("C-7")
    codes = bank.card("C-7")
    reg = t.register(customer="C-7", key_slot=SIG).registration
    assert reg.active and reg.public_key == generated.public_key_der
    # the center's record carries it too
    listed = t.center.ListRegistrations(customer_pb2.ListRegistrationsRequest(
        customer_id="C-7"))
    assert [r.public_key for r in listed.registrations] == [generated.public_key_der]

    def order(account: str) -> tuple[Order, str]:
        idem = bank.key()
        return Order("bank-a", "C-7", Purpose.TRANSFER, 3_000_000, Receiving.OTHER, account,
                     Channel.INTERNET_BANKING, idem), idem

    signed_order, idem = order("110-1")
    signed = t.cards.Sign(pb.SignRequest(reader=READERS[0], slot=SIG, algorithm=P256, pin=PIN,
                                         message=signed_order.signing_bytes()))
    assert signed.pin.outcome == pb.PinResult.OK
    presented = P.SignaturePresented(medium=P.POLICY_MEDIUM_SMARTCARD, serial=reg.serial,
                                     signature=signed.signature)
    d = bank.transfer("C-7", 3_000_000, device=NEW_PC, to_account="110-1", key=idem,
                      card=bank.challenge("C-7", codes), signature=presented,
                      additional_done=P.ADDITIONAL_SMS)
    assert d.outcome == P.DECISION_APPROVED, codes_of(d)
    # the card's signature over another order does not pass for this one
    _other, idem = order("110-2")
    d = bank.transfer("C-7", 3_000_000, device=NEW_PC, to_account="110-2", key=idem,
                      card=bank.challenge("C-7", codes), signature=presented,
                      additional_done=P.ADDITIONAL_SMS)
    assert codes_of(d) == ["bad_signature"]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_key_slot_without_its_key_registers_nothing(
        server: Any, request: pytest.FixtureRequest, store: str, card: VirtualCardSlot) -> None:
    """A slot with no certificate, and a certificate over a key the slot does not hold, are
    FAILED_PRECONDITION before anything is recorded; the PIN's tries are untouched."""
    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    t = Teller(server(store_url=store_url), "bank-a")
    guid = guid_of(card)
    with pytest.raises(grpc.RpcError) as err:
        t.register(key_slot=SIG)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "holds no certificate" in (err.value.details() or "")
    # a certificate over some other key, written into 9C beside a key generated there
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    t.cards.GenerateKey(pb.GenerateKeyRequest(reader=READERS[0], slot=SIG, algorithm=P256))
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    t.cards.ImportCertificate(pb.ImportCertificateRequest(
        reader=READERS[0], slot=SIG, certificate_der=_certificate_for(stranger, "C-1")))
    with pytest.raises(grpc.RpcError) as err:
        t.register(key_slot=SIG)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "does not match its certificate" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        t.register(key_slot=0x42)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    check = customer_pb2.CheckExemptionRequest(kind=customer_pb2.MEDIUM_KIND_SMARTCARD,
                                               serial=guid, customer_id="C-1")
    assert t.center.CheckExemption(check).outcome == \
        customer_pb2.EXEMPTION_OUTCOME_NOT_REGISTERED
    assert t.pin_attempts() == 3
    # without a key slot the card still registers, with no key
    assert t.register().registration.public_key == b""
