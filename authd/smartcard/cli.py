"""authctl smartcard ...: the customer's smartcard in a reader of this terminal (branch role).

Without ``--reader`` a command uses the only reader holding a card. PINs and PUKs are asked
on the terminal without echo, or read one per line from ``--pin-stdin`` / ``--pin-file``;
a management key (hex) only from ``--management-key-file``. Nothing secret is ever printed.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authd.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_secret_options,
    enum_label,
    parse_hex,
    read_input,
    read_secrets,
)
from authd.customer.cli import registration_lines
from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc

SLOTS = {
    "authentication": pb.PIV_SLOT_AUTHENTICATION, "9a": pb.PIV_SLOT_AUTHENTICATION,
    "signature": pb.PIV_SLOT_SIGNATURE, "9c": pb.PIV_SLOT_SIGNATURE,
    "key-management": pb.PIV_SLOT_KEY_MANAGEMENT, "9d": pb.PIV_SLOT_KEY_MANAGEMENT,
    "card-auth": pb.PIV_SLOT_CARD_AUTH, "9e": pb.PIV_SLOT_CARD_AUTH,
}
SLOT_NAMES = {pb.PIV_SLOT_AUTHENTICATION: "9A authentication", pb.PIV_SLOT_SIGNATURE:
              "9C signature", pb.PIV_SLOT_KEY_MANAGEMENT: "9D key management",
              pb.PIV_SLOT_CARD_AUTH: "9E card authentication"}
ALGORITHMS = {"ec-p256": pb.KEY_ALGORITHM_EC_P256, "ec-p384": pb.KEY_ALGORITHM_EC_P384,
              "rsa2048": pb.KEY_ALGORITHM_RSA2048}
HASHES = ("sha256", "sha384", "sha512")
MAX_MESSAGE = 1 << 20  # the service hashes at most this much itself


def slot_arg(text: str) -> int:
    try:
        return SLOTS[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            "slot is authentication (9a), signature (9c), key-management (9d) or "
            "card-auth (9e)") from None


def _slot_name(value: int) -> str:
    return SLOT_NAMES.get(value, f"{value:02X}")  # type: ignore[call-overload]


def _stub(ctl: Any) -> smartcard_pb2_grpc.SmartcardServiceStub:
    return smartcard_pb2_grpc.SmartcardServiceStub(ctl.channel)


def _reader(ctl: Any, a: argparse.Namespace) -> str:
    """``--reader``, or the only reader with a card in it."""
    if a.reader:
        return str(a.reader)
    readers = _stub(ctl).ListReaders(pb.ListReadersRequest(), timeout=a.timeout).readers
    with_card = [r.name for r in readers if r.card_present]
    if len(with_card) == 1:
        return with_card[0]
    if not with_card:
        raise CommandError("no card in any reader" if readers else "no smartcard reader found")
    raise CommandError(f"cards in {len(with_card)} readers: pick one with --reader "
                       f"({'; '.join(with_card)})")


def _management_key(a: argparse.Namespace) -> bytes:
    if not a.management_key_file:
        return b""
    key = parse_hex(read_input(a.management_key_file, "the management key").decode(
        "ascii", "replace"), "the management key")
    if len(key) != 24:
        raise CommandError("the management key is 24 bytes (48 hex digits) of 3DES")
    return key


# --------------------------------------------------------------------------- rendering


def readers_lines(m: pb.ListReadersResponse) -> list[str]:
    if not m.readers:
        return ["no smartcard reader"]
    return [f"{r.name}: " + (f"card present, ATR {r.atr.hex(' ')}" if r.card_present
                             else "no card") for r in m.readers]


def info_lines(m: pb.CardInfo) -> list[str]:
    lines = [f"card in {m.reader}", f"  ATR {m.atr.hex(' ')}"]
    lines += [f"  application {x.name} (AID {x.aid.hex().upper()})" for x in m.applets]
    if not m.applets:
        lines.append("  no known application answers")
    return lines


def piv_lines(m: pb.PivStatus) -> list[str]:
    pin = ("BLOCKED: unblock with the PUK (authctl smartcard unblock-pin)" if m.pin_blocked
           else f"{m.pin_attempts_remaining} attempt(s) left")
    lines = [f"PIV card in {m.reader}",
             f"  GUID {m.guid.hex()}" + (f", expires {m.expiry}" if m.expiry else ""),
             f"  PIN: {pin}"]
    for c in m.certificates:
        lines.append(f"  slot {_slot_name(c.slot)}: {c.subject}")
        lines.append(f"    issued by {c.issuer}, valid until {c.not_after}")
    if not m.certificates:
        lines.append("  no certificates")
    return lines


def pin_lines(m: pb.PinResult, what: str = "PIN") -> list[str]:
    if m.outcome == pb.PinResult.OK:
        return [f"OK: {what} accepted ({m.attempts_remaining} attempt(s) left)"]
    if m.outcome == pb.PinResult.WRONG:
        return [f"WRONG {what}: {m.attempts_remaining} attempt(s) left"]
    if m.outcome == pb.PinResult.BLOCKED:
        return [f"BLOCKED: the {what} is blocked"
                + (": unblock it with the PUK" if what == "PIN" else ": the card must be reissued")]
    return [f"{enum_label(pb.PinResult.Outcome, m.outcome, '').upper()}"]


def _pin_exit(m: pb.PinResult) -> int:
    return EXIT_OK if m.outcome == pb.PinResult.OK else EXIT_REFUSED


# --------------------------------------------------------------------------- commands


def _verify_pin(ctl: Any, a: argparse.Namespace) -> int:
    reader = _reader(ctl, a)
    (pin,) = read_secrets(a, ["PIN"])
    resp = _stub(ctl).VerifyPin(pb.VerifyPinRequest(reader=reader, pin=pin), timeout=a.timeout)
    ctl.show(resp, pin_lines)
    return _pin_exit(resp)


def _change_pin(ctl: Any, a: argparse.Namespace) -> int:
    reader = _reader(ctl, a)
    old, new = read_secrets(a, ["current PIN", "new PIN"], confirm=("new PIN",))
    resp = _stub(ctl).ChangePin(pb.ChangePinRequest(reader=reader, old_pin=old, new_pin=new),
                                timeout=a.timeout)
    ctl.show(resp, lambda m: (["OK: PIN changed"] if m.outcome == pb.PinResult.OK
                              else pin_lines(m, "current PIN")))
    return _pin_exit(resp)


def _unblock_pin(ctl: Any, a: argparse.Namespace) -> int:
    reader = _reader(ctl, a)
    puk, new = read_secrets(a, ["PUK", "new PIN"], confirm=("new PIN",))
    resp = _stub(ctl).UnblockPin(pb.UnblockPinRequest(reader=reader, puk=puk, new_pin=new),
                                 timeout=a.timeout)
    ctl.show(resp, lambda m: (["OK: PIN unblocked and set"] if m.outcome == pb.PinResult.OK
                              else pin_lines(m, "PUK")))
    return _pin_exit(resp)


def _writable(path: str | None) -> None:
    if path and path != "-" and (Path(path).is_dir() or not Path(path).resolve().parent.is_dir()):
        raise CommandError(f"{path}: not a file in an existing directory")


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _generate_key(ctl: Any, a: argparse.Namespace) -> None:
    _writable(a.out)
    reader = _reader(ctl, a)
    resp = _stub(ctl).GenerateKey(pb.GenerateKeyRequest(
        reader=reader, slot=a.slot, algorithm=ALGORITHMS[a.algorithm],
        management_key=_management_key(a)), timeout=a.timeout)
    pem = serialization.load_der_public_key(resp.public_key_der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if a.out:
        _write(a.out, pem)

    def render(m: pb.GenerateKeyResponse) -> list[str]:
        lines = [f"new {a.algorithm} key generated on the card in slot {_slot_name(a.slot)} "
                 f"(the private key never leaves the card)"]
        if a.out:
            lines.append(f"  public key written to {a.out}")
        else:
            lines += pem.decode().splitlines()
        return lines

    ctl.show(resp, render)


def _load_certificate(path: str) -> bytes:
    data = read_input(path, "the certificate")
    try:
        if b"-----BEGIN" in data:
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError:
        raise CommandError(f"{path} is not an X.509 certificate (PEM or DER)") from None
    return certificate.public_bytes(serialization.Encoding.DER)


def _import_cert(ctl: Any, a: argparse.Namespace) -> None:
    der = _load_certificate(a.certificate)
    reader = _reader(ctl, a)
    resp = _stub(ctl).ImportCertificate(pb.ImportCertificateRequest(
        reader=reader, slot=a.slot, certificate_der=der,
        management_key=_management_key(a)), timeout=a.timeout)
    ctl.show(resp, lambda m: [
        f"certificate stored in slot {_slot_name(m.certificate.slot)}: {m.certificate.subject}",
        f"  issued by {m.certificate.issuer}, valid until {m.certificate.not_after}"])


def _algorithm_of_slot(ctl: Any, a: argparse.Namespace, reader: str) -> pb.KeyAlgorithm:
    """The key algorithm, from the certificate stored in the slot."""
    status = _stub(ctl).GetPivStatus(pb.CardRequest(reader=reader), timeout=a.timeout)
    for c in status.certificates:
        if c.slot == a.slot:
            key = x509.load_der_x509_certificate(c.der).public_key()
            if isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048:
                return pb.KEY_ALGORITHM_RSA2048
            if isinstance(key, ec.EllipticCurvePublicKey):
                found = {"secp256r1": pb.KEY_ALGORITHM_EC_P256,
                         "secp384r1": pb.KEY_ALGORITHM_EC_P384}.get(key.curve.name)
                if found:
                    return found
            raise CommandError("the slot's certificate holds a key type PIV cannot sign with")
    raise CommandError(f"no certificate in slot {_slot_name(a.slot)} to tell the key type: "
                       "give --algorithm")


def _sign(ctl: Any, a: argparse.Namespace) -> int:
    if a.digest and a.input:
        raise CommandError("give the message (--input) or its --digest, not both")
    if a.pin_stdin and not a.digest and a.input in (None, "-"):
        raise CommandError("standard input cannot carry both the message and the PIN: "
                           "give --input FILE or --pin-file")
    _writable(a.out)
    message, digest = b"", b""
    if a.digest:
        digest = parse_hex(a.digest, "--digest")
    else:
        message = read_input(a.input or "-", "the message")
        if not message:
            raise CommandError("the message is empty")
        if len(message) > MAX_MESSAGE:
            digest, message = hashlib.new(a.hash, message).digest(), b""
    reader = _reader(ctl, a)
    algorithm = ALGORITHMS[a.algorithm] if a.algorithm else _algorithm_of_slot(ctl, a, reader)
    (pin,) = read_secrets(a, ["PIN"])
    resp = _stub(ctl).Sign(pb.SignRequest(
        reader=reader, slot=a.slot, algorithm=algorithm, pin=pin, message=message,
        digest=digest, hash=a.hash), timeout=a.timeout)
    if resp.pin.outcome != pb.PinResult.OK:
        ctl.show(resp, lambda m: ["nothing signed", *pin_lines(m.pin)])
        return EXIT_REFUSED
    if a.out:
        _write(a.out, resp.signature)
        ctl.show(resp, lambda m: [f"signature ({len(m.signature)} bytes) written to {a.out}"])
    else:
        ctl.show(resp, lambda m: [m.signature.hex()])
    return EXIT_OK


def _apdu(ctl: Any, a: argparse.Namespace) -> int:
    apdus = [parse_hex(text, "an APDU") for text in a.apdus]
    for text, apdu in zip(a.apdus, apdus, strict=True):
        if len(apdu) < 4:
            raise CommandError(f"an APDU is at least 4 bytes (CLA INS P1 P2): {text!r}")
    reader = _reader(ctl, a)
    resp = _stub(ctl).Transmit(pb.TransmitRequest(reader=reader, apdus=apdus), timeout=a.timeout)

    def render(m: pb.TransmitResponse) -> list[str]:
        lines = []
        for apdu, r in zip(apdus, m.responses, strict=False):
            lines.append(f"> {apdu.hex().upper()}")
            lines.append(" ".join(["<", *([r.data.hex().upper()] if r.data else []),
                                   f"{r.sw:04X}"]))
        return lines

    ctl.show(resp, render)
    return EXIT_OK


def _register(ctl: Any, a: argparse.Namespace) -> int:
    reader = _reader(ctl, a)
    (pin,) = read_secrets(a, ["PIN"])
    resp = _stub(ctl).RegisterCard(pb.RegisterCardRequest(
        reader=reader, pin=pin, customer_id=a.customer, operator_id=a.operator,
        terminal=a.terminal or "", key_slot=a.key_slot or pb.PIV_SLOT_UNSPECIFIED),
        timeout=a.timeout)

    def render(m: pb.RegisterCardResponse) -> list[str]:
        if not m.HasField("registration"):
            return [*pin_lines(m.pin), "  the card was not registered"]
        return registration_lines(m.registration)

    ctl.show(resp, render)
    return EXIT_OK if resp.HasField("registration") else _pin_exit(resp.pin)


def _deregister(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).DeregisterCard(pb.DeregisterCardRequest(
        card_serial=a.card_serial, customer_id=a.customer, operator_id=a.operator,
        reason=a.reason), timeout=a.timeout), registration_lines)


def add_commands(sub: Any) -> None:
    sc = sub.add_parser("smartcard", help="the customer's smartcard (PIV) in this terminal's "
                                          "reader: PIN, keys, certificates, signing, APDUs")
    cmds = sc.add_subparsers(dest="smartcard_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str, run: Any, *, aliases: tuple[str, ...] = (),
                pins: bool = False, mgmt: bool = False) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_text, aliases=list(aliases))
        p.add_argument("--reader", help="reader name (default: the only one with a card)")
        if pins:
            add_secret_options(p)
        if mgmt:
            p.add_argument("--management-key-file", metavar="FILE",
                           help="the card's management key, 48 hex digits (default: the "
                                "daemon's configured one)")
        p.set_defaults(run=run)
        return p

    p = cmds.add_parser("readers", help="(branch, admin) readers and whether a card is in them")
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).ListReaders(
        pb.ListReadersRequest(), timeout=a.timeout), readers_lines))
    command("info", "(branch, admin) the card's ATR and applications",
            lambda ctl, a: ctl.show(_stub(ctl).GetCardInfo(
                pb.CardRequest(reader=_reader(ctl, a)), timeout=a.timeout), info_lines))
    command("status", "PIV: card id, PIN attempts left, certificates", aliases=("piv-status",),
            run=lambda ctl, a: ctl.show(_stub(ctl).GetPivStatus(
                pb.CardRequest(reader=_reader(ctl, a)), timeout=a.timeout), piv_lines))
    command("verify-pin", "check the customer's PIN", _verify_pin, pins=True)
    command("change-pin", "change the PIN (current PIN, then the new one)", _change_pin,
            pins=True)
    command("unblock-pin", "unblock the PIN with the PUK and set a new one (PUK, then new PIN)",
            _unblock_pin, aliases=("unblock",), pins=True)

    p = command("generate-key", "generate a key pair on the card (replaces the slot's key)",
                _generate_key, mgmt=True)
    p.add_argument("--slot", type=slot_arg, required=True,
                   help="authentication (9a), signature (9c), key-management (9d), card-auth (9e)")
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="ec-p256")
    p.add_argument("--out", metavar="FILE", help="write the public key (PEM) to FILE")

    p = command("import-cert", "store a certificate (PEM or DER file) in a slot", _import_cert,
                mgmt=True)
    p.add_argument("certificate", help="PEM or DER file ('-': standard input)")
    p.add_argument("--slot", type=slot_arg, required=True)

    p = command("sign", "sign a message with a slot's key (asks the PIN)", _sign, pins=True)
    p.add_argument("--slot", type=slot_arg, required=True)
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS),
                   help="default: from the slot's certificate")
    p.add_argument("--input", "-i", dest="input", metavar="FILE",
                   help="the message (default: standard input)")
    p.add_argument("--digest", metavar="HEX", help="sign this digest instead of a message")
    p.add_argument("--hash", choices=HASHES, default="sha256")
    p.add_argument("--out", metavar="FILE",
                   help="write the signature (DER for ECDSA, PKCS#1 v1.5 for RSA) to FILE "
                        "(default: hex on standard output)")

    p = command("register", "(branch) register the customer's card at this branch (the "
                            "customer types the PIN); recorded at the center", _register,
                pins=True)
    p.add_argument("--customer", required=True,
                   help="your institution's reference of the card holder")
    p.add_argument("--operator", required=True, help="teller's operator id")
    p.add_argument("--terminal", help="default: your certificate's name")
    p.add_argument("--key-slot", type=slot_arg, metavar="SLOT",
                   help="record the key of this slot (usually signature, 9c) as the one the "
                        "customer signs transfers with; the slot needs its certificate, and "
                        "the card signs a challenge with the key first")
    p = cmds.add_parser("deregister", help="(branch) end the card's registration (no card "
                                           "needed)")
    p.add_argument("card_serial", help="the card's GUID in hex, as registered")
    p.add_argument("--customer", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--reason", required=True)
    p.set_defaults(run=_deregister)

    p = command("apdu", "(branch) send raw command APDUs (hex), in order, on one connection",
                _apdu)
    p.add_argument("apdus", nargs="+", metavar="HEX", help="e.g. 00A4040009A00000030800001000")
