"""authctl token ...: HSM security tokens (보안토큰) over PKCS#11 at a branch terminal.

``token login SERIAL`` asks the customer's PIN (terminal without echo, ``--pin-stdin`` or
``--pin-file``) and prints a login handle; the key, certificate and signing commands take it
as ``--session HANDLE`` or from ``$AUTHCTL_TOKEN_SESSION``. A handle works only for the same
caller certificate, ends after its idle timeout, and ``token logout`` ends it at once.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from authd.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_secret_options,
    enum_label,
    parse_hex,
    read_input,
    read_secrets,
    when,
)
from authd.errors import details_of
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc

SESSION_ENV = "AUTHCTL_TOKEN_SESSION"
SPECS = {"ec-p256": pb.TOKEN_KEY_SPEC_EC_P256, "ec-p384": pb.TOKEN_KEY_SPEC_EC_P384,
         "rsa-2048": pb.TOKEN_KEY_SPEC_RSA_2048, "rsa-3072": pb.TOKEN_KEY_SPEC_RSA_3072}
ALGORITHMS = {"ecdsa-sha256": pb.TOKEN_SIGN_ECDSA_SHA256,
              "rsa-pkcs1v15-sha256": pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256,
              "rsa-pss-sha256": pb.TOKEN_SIGN_RSA_PSS_SHA256}
SCOPES = {"all": pb.TokenDeleteObjectRequest.SCOPE_UNSPECIFIED,
          "key-pair": pb.TokenDeleteObjectRequest.KEY_PAIR,
          "certificate": pb.TokenDeleteObjectRequest.CERTIFICATE}


def _stub(ctl: Any) -> token_pb2_grpc.TokenServiceStub:
    return token_pb2_grpc.TokenServiceStub(ctl.channel)


def _session(a: argparse.Namespace) -> str:
    session = a.session or os.environ.get(SESSION_ENV, "")
    if not session:
        raise CommandError(f"log in first (authctl token login SERIAL), then give the handle "
                           f"with --session or ${SESSION_ENV}")
    return str(session)


def _key_id(text: str) -> bytes:
    key_id = parse_hex(text, "the key id")
    if not key_id:
        raise CommandError("the key id is empty")
    return key_id


def _spec(value: int) -> str:
    return enum_label(pb.TokenKeySpec, value, "TOKEN_KEY_SPEC_").replace(" ", "-")


def _writable(path: str | None) -> None:
    if path and (Path(path).is_dir() or not Path(path).resolve().parent.is_dir()):
        raise CommandError(f"{path}: not a file in an existing directory")


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- rendering


def _pin_state(s: pb.TokenPinState) -> str:
    if s.locked:
        return "PIN locked: unblock it at a branch (authctl token unblock-pin)"
    words = []
    if s.final_try:
        words.append("final try")
    elif s.count_low:
        words.append("a wrong PIN was entered")
    if s.to_be_changed:
        words.append("the PIN must be changed")
    if s.attempts_left >= 0:
        words.append(f"{s.attempts_left} attempt(s) left")
    return "PIN " + (", ".join(words) if words else "ok")


def token_lines(t: pb.SecurityToken) -> list[str]:
    return [f"token {t.serial} \"{t.label}\": {t.manufacturer} {t.model}".rstrip(),
            f"  {_pin_state(t.pin_state)}" + ("; logged in" if t.logged_in else ""),
            f"  module {t.module}, slot {t.slot_id}"]


def tokens_lines(m: pb.ListTokensResponse) -> list[str]:
    lines: list[str] = []
    for t in m.tokens:
        lines += token_lines(t)
    return lines or ["no token present"]


def key_lines(k: pb.TokenKeyInfo) -> list[str]:
    parts = ["private key" if k.has_private_key else "public key only",
             "certificate" if k.has_certificate else "no certificate"]
    if k.extractable:
        parts.append("EXTRACTABLE")
    return [f"key {k.key_id.hex()} \"{k.label}\": {_spec(k.spec)}, {', '.join(parts)}"]


def cert_lines(c: pb.TokenCertificateInfo) -> list[str]:
    renewal = enum_label(pb.TokenRenewalState, c.renewal, "TOKEN_RENEWAL_")
    lines = [f"certificate for key {c.key_id.hex()} \"{c.label}\": {c.subject}",
             f"  issued by {c.issuer}, serial {c.serial_hex}",
             f"  valid {when(c.not_before)} to {when(c.not_after)}: {renewal}"]
    if c.renewal == pb.TOKEN_RENEWAL_RENEWABLE:
        lines.append(f"  renew until {c.renewable_until}")
    elif c.renewal == pb.TOKEN_RENEWAL_VALID and c.renewable_from:
        lines.append(f"  renewable from {c.renewable_from} until {c.renewable_until}")
    elif c.renewal == pb.TOKEN_RENEWAL_EXPIRED:
        lines.append("  expired: reissue only")
    return lines


def registration_lines(r: pb.TokenRegistration) -> list[str]:
    state = "active" if r.active else f"ended {when(r.deregistered_at)}"
    return [f"registration {r.id}: token {r.token_serial} for customer {r.customer_id} at "
            f"{r.institution}: {state}",
            f"  registered {when(r.registered_at)} at terminal {r.terminal} by {r.operator}"
            + ("; with its signing key" if r.public_key else "")]


# --------------------------------------------------------------------------- commands


def _attempts_left(err: grpc.RpcError) -> str | None:
    details = details_of(err)
    return details.metadata.get("attempts_left") if details.reason == "WRONG_PIN" else None


def _login(ctl: Any, a: argparse.Namespace) -> int:
    (pin,) = read_secrets(a, ["PIN"])
    try:
        resp = _stub(ctl).Login(pb.TokenLoginRequest(token_serial=a.serial, pin=pin),
                                timeout=a.timeout)
    except grpc.RpcError as err:
        left = _attempts_left(err) if err.code() == grpc.StatusCode.PERMISSION_DENIED else None
        if left is None:
            raise
        print(f"WRONG PIN: {left} attempt(s) left before the token's PIN is locked")
        return EXIT_REFUSED
    ctl.show(resp, lambda m: [
        f"logged in to token {m.token.serial} \"{m.token.label}\"",
        f"  session {m.session}",
        f"  ends after {m.idle_timeout_seconds} s unused (now: {when(m.expires_at)}); "
        f"authctl token logout ends it at once",
        f"  for the next commands: export {SESSION_ENV}={m.session}"])
    return EXIT_OK


def _logout(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).Logout(pb.TokenLogoutRequest(session=_session(a)), timeout=a.timeout),
             lambda m: ["logged out; the session handle is no longer valid"])


def _unblock(ctl: Any, a: argparse.Namespace) -> None:
    so_pin, new_pin = read_secrets(a, ["SO PIN", "new PIN"], confirm=("new PIN",))
    resp = _stub(ctl).UnblockPin(pb.TokenUnblockPinRequest(
        token_serial=a.serial, so_pin=so_pin, new_pin=new_pin, operator=a.operator,
        reason=a.reason), timeout=a.timeout)
    ctl.show(resp, lambda m: ["PIN unblocked and set", *token_lines(m.token)])


def _objects(ctl: Any, a: argparse.Namespace) -> pb.TokenListObjectsResponse:
    if a.token:
        request = pb.TokenListObjectsRequest(token_serial=a.token)
    else:
        request = pb.TokenListObjectsRequest(session=_session(a))
    resp: pb.TokenListObjectsResponse = _stub(ctl).ListObjects(request, timeout=a.timeout)
    return resp


def _keys(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_objects(ctl, a), lambda m: [line for k in m.keys for line in key_lines(k)]
             or ["no keys"])


def _certs(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_objects(ctl, a), lambda m: [line for c in m.certificates
                                          for line in cert_lines(c)] or ["no certificates"])


def _generate(ctl: Any, a: argparse.Namespace) -> None:
    _writable(a.out)
    resp = _stub(ctl).GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=_session(a), spec=SPECS[a.spec], label=a.label,
        key_id=_key_id(a.key_id) if a.key_id else b""), timeout=a.timeout)
    pem = serialization.load_der_public_key(resp.public_key_der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if a.out:
        _write(a.out, pem)
    ctl.show(resp, lambda m: [
        *key_lines(m), "  generated on the token; the private key never leaves it",
        *([f"  public key written to {a.out}"] if a.out else pem.decode().splitlines())])


def _csr(ctl: Any, a: argparse.Namespace) -> None:
    _writable(a.out)
    resp = _stub(ctl).CreateCsr(pb.TokenCreateCsrRequest(
        session=_session(a), key_id=_key_id(a.key_id), subject=a.subject, rsa_pss=a.rsa_pss),
        timeout=a.timeout)
    if a.out:
        _write(a.out, resp.csr_pem.encode())
        ctl.show(resp, lambda m: [f"certificate request for {a.subject} written to {a.out}"])
    else:
        ctl.show(resp, lambda m: m.csr_pem.splitlines())


def _import_cert(ctl: Any, a: argparse.Namespace) -> None:
    data = read_input(a.certificate, "the certificate")
    if not data:
        raise CommandError(f"{a.certificate} is empty")
    resp = _stub(ctl).ImportCertificate(pb.TokenImportCertificateRequest(
        session=_session(a), certificate=data, label=a.label or "", replace=a.replace),
        timeout=a.timeout)
    ctl.show(resp, lambda m: ["certificate stored next to its key", *cert_lines(m)])


def _sign(ctl: Any, a: argparse.Namespace) -> None:
    if a.digest and a.input:
        raise CommandError("give the data (--input) or its --digest, not both")
    _writable(a.out)
    key_id = _key_id(a.key_id)
    session = _session(a)
    request = pb.TokenSignRequest(session=session, key_id=key_id,
                                  algorithm=ALGORITHMS[a.algorithm] if a.algorithm else
                                  pb.TOKEN_SIGN_ALGORITHM_UNSPECIFIED,
                                  token_hashes=a.token_hashes)
    if a.digest:
        request.digest = parse_hex(a.digest, "--digest")
    else:
        data = read_input(a.input or "-", "the data")
        if not data:
            raise CommandError("the data to sign is empty")
        request.data = data
    resp = _stub(ctl).Sign(request, timeout=a.timeout)
    algorithm = enum_label(pb.TokenSignAlgorithm, resp.algorithm, "TOKEN_SIGN_")
    if a.out:
        _write(a.out, resp.signature)
        ctl.show(resp, lambda m: [f"{algorithm} signature ({len(m.signature)} bytes) written "
                                  f"to {a.out}"])
    else:
        ctl.show(resp, lambda m: [m.signature.hex()])


def _delete(ctl: Any, a: argparse.Namespace) -> None:
    resp = _stub(ctl).DeleteObject(pb.TokenDeleteObjectRequest(
        session=_session(a), key_id=_key_id(a.key_id), scope=SCOPES[a.what]), timeout=a.timeout)
    ctl.show(resp, lambda m: [f"{m.deleted} object(s) deleted"])


def _register(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).RegisterToken(pb.RegisterTokenRequest(
        session=_session(a), customer_id=a.customer, operator=a.operator,
        terminal=a.terminal or "", key_id=_key_id(a.key_id) if a.key_id else b""),
        timeout=a.timeout), registration_lines)


def _deregister(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).DeregisterToken(pb.DeregisterTokenRequest(
        token_serial=a.serial, customer_id=a.customer, operator=a.operator, reason=a.reason),
        timeout=a.timeout), lambda m: registration_lines(m.registration))


def _exemption(ctl: Any, a: argparse.Namespace) -> int:
    resp = _stub(ctl).CheckTokenExemption(pb.CheckTokenExemptionRequest(
        token_serial=a.serial, customer_id=a.customer), timeout=a.timeout)

    def render(m: pb.CheckTokenExemptionResponse) -> list[str]:
        head = ("EXEMPT from additional authentication" if m.exempt
                else "NOT EXEMPT: additional authentication needed")
        lines = [head + (f": {m.reason}" if m.reason else "")]
        if m.HasField("registration"):
            lines += registration_lines(m.registration)
        return lines

    ctl.show(resp, render)
    return EXIT_OK if resp.exempt else EXIT_REFUSED


def add_commands(sub: Any) -> None:
    tok = sub.add_parser("token", help="HSM security tokens (PKCS#11): login, keys, "
                                       "certificates, signing, branch registration")
    cmds = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str, run: Any, *,
                session: bool = True) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_text)
        if session:
            p.add_argument("--session", metavar="HANDLE",
                           help=f"the login handle (default: ${SESSION_ENV})")
        p.set_defaults(run=run)
        return p

    command("list", "(branch, admin) tokens present in the configured PKCS#11 modules",
            lambda ctl, a: ctl.show(_stub(ctl).ListTokens(pb.ListTokensRequest(),
                                                          timeout=a.timeout), tokens_lines),
            session=False)

    p = command("login", "log in with the customer's PIN; prints a session handle", _login,
                session=False)
    p.add_argument("serial", help="the token's serial (authctl token list)")
    add_secret_options(p)
    command("logout", "end the login at once", _logout)

    p = command("unblock-pin", "unblock a locked PIN with the SO PIN and set a new PIN "
                               "(SO PIN, then new PIN)", _unblock, session=False)
    p.add_argument("serial")
    p.add_argument("--operator", required=True, help="teller's operator id (audited)")
    p.add_argument("--reason", required=True)
    add_secret_options(p)

    for name, help_text, run in (("keys", "the keys on the token", _keys),
                                 ("certs", "the certificates and their renewal state", _certs)):
        p = command(name, help_text, run)
        p.add_argument("--token", metavar="SERIAL",
                       help="without logging in: the token's public objects")

    p = command("generate", "generate a key pair on the token", _generate)
    p.add_argument("--spec", choices=sorted(SPECS), default="ec-p256")
    p.add_argument("--label", required=True, help="the key's label, e.g. the customer's name")
    p.add_argument("--key-id", metavar="HEX", help="CKA_ID (default: 16 random bytes)")
    p.add_argument("--out", metavar="FILE", help="write the public key (PEM) to FILE")

    p = command("csr", "a certificate request (PKCS#10) signed by a key on the token", _csr)
    p.add_argument("key_id", metavar="KEY_ID", help="hex (authctl token keys)")
    p.add_argument("--subject", required=True,
                   help='RFC 4514, e.g. "CN=Hong Gildong,O=bank-a,C=KR"')
    p.add_argument("--rsa-pss", action="store_true", help="RSA keys: sign the request with PSS")
    p.add_argument("--out", metavar="FILE", help="write the PEM to FILE (default: stdout)")

    p = command("import-cert", "store a certificate (PEM or DER) next to its key", _import_cert)
    p.add_argument("certificate", help="file ('-': standard input)")
    p.add_argument("--label", help="default: the key's label")
    p.add_argument("--replace", action="store_true",
                   help="replace the key's certificate (renewal)")

    p = command("sign", "sign data (or a SHA-256 digest) with a key on the token", _sign)
    p.add_argument("key_id", metavar="KEY_ID")
    p.add_argument("--input", "-i", dest="input", metavar="FILE",
                   help="the data (default: standard input)")
    p.add_argument("--digest", metavar="HEX", help="a SHA-256 digest to sign instead")
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS),
                   help="default: ECDSA-SHA256 or RSA PKCS#1 v1.5 SHA-256 by the key")
    p.add_argument("--token-hashes", action="store_true", help="let the token hash the data")
    p.add_argument("--out", metavar="FILE",
                   help="write the signature to FILE (default: hex on standard output)")

    p = command("delete", "delete a key pair and/or its certificate", _delete)
    p.add_argument("key_id", metavar="KEY_ID")
    p.add_argument("--what", choices=sorted(SCOPES), required=True)

    p = command("register", "(branch) register the logged-in token at this branch for a "
                            "customer", _register)
    p.add_argument("--customer", required=True, help="customer id")
    p.add_argument("--operator", required=True, help="teller's operator id")
    p.add_argument("--terminal", help="default: your certificate's name")
    p.add_argument("--key-id", help="the key pair (hex id) the customer signs transfers with: "
                                    "its public key is kept with the registration")

    p = command("deregister", "(branch) end the token's registration", _deregister,
                session=False)
    p.add_argument("serial")
    p.add_argument("--customer", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--reason", required=True)

    p = command("exemption", "(backend, branch) is the customer's token registered here "
                             "(no additional authentication)?", _exemption, session=False)
    p.add_argument("serial")
    p.add_argument("--customer", required=True)

