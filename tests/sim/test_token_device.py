"""devices.token on real SoftHSM2 tokens, checked by independent tools (pkcs11-tool, openssl,
cryptography)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from devices.errors import AlreadyPresent, BadRequest, NoSuchObject, WrongState
from devices.token import KeySpec, RenewalState, SignAlgorithm, TokenDevice
from devices.token.token import DeleteScope
from drivers.pkcs11 import Pkcs11Module, Pkcs11TokenSession
from simulators.certificate.ca import DemoCa
from simulators.token.softhsm import SoftHsmEnvironment, SoftHsmToken, process_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env() -> SoftHsmEnvironment:
    return process_env()


@pytest.fixture
def token(env: SoftHsmEnvironment) -> SoftHsmToken:
    return env.init_token(f"dev-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def device(env: SoftHsmEnvironment, token: SoftHsmToken) -> Iterator[TokenDevice]:
    module = Pkcs11Module(env.module)
    module.login(token.serial, token.pin)
    yield TokenDevice(Pkcs11TokenSession(module, token.serial, token.label), max_data=4096)
    module.logout(token.serial)
    module.close()


def _objects(device: TokenDevice) -> list[tuple[int, bytes]]:
    return sorted((int(r.object_class), r.key_id) for r in device.session.find_objects())


@pytest.mark.parametrize("spec", [KeySpec.EC_P256, KeySpec.RSA_2048])
def test_generated_key_is_non_extractable_and_seen_by_pkcs11_tool(
    env: SoftHsmEnvironment, token: SoftHsmToken, device: TokenDevice, spec: KeySpec
) -> None:
    key = device.generate_key(spec, "customer key", key_id=b"\xa1\xb2")
    assert key.extractable is False and key.has_private and key.spec == spec.value
    out = env.pkcs11_tool("--token-label", token.label, "--login", "--pin", token.pin, "-O")
    assert out.returncode == 0, out.stderr
    assert "Private Key Object" in out.stdout and "Public Key Object" in out.stdout
    assert "ID:         a1b2" in out.stdout
    assert "customer key" in out.stdout
    private = out.stdout.split("Private Key Object", 1)[1].split("Object", 1)[0]
    assert "never extractable" in private and "sensitive" in private


@pytest.mark.parametrize("algorithm", list(SignAlgorithm))
def test_signatures_verify_with_cryptography_and_openssl(
    device: TokenDevice, tmp_path: Path, algorithm: SignAlgorithm
) -> None:
    spec = KeySpec.EC_P256 if algorithm is SignAlgorithm.ECDSA_SHA256 else KeySpec.RSA_2048
    key = device.generate_key(spec, "k")
    data = b"login challenge 7f3a"
    sig = device.sign(key.key_id, data=data, algorithm=algorithm)
    public = serialization.load_der_public_key(key.public_key_der)
    if algorithm is SignAlgorithm.ECDSA_SHA256:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(sig.signature, data, ec.ECDSA(hashes.SHA256()))
    elif algorithm is SignAlgorithm.RSA_PKCS1V15_SHA256:
        public.verify(sig.signature, data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg, union-attr]
    else:
        public.verify(
            sig.signature,
            data,  # type: ignore[call-arg, union-attr]
            padding.PSS(padding.MGF1(hashes.SHA256()), 32),
            hashes.SHA256(),
        )
    (tmp_path / "pub.der").write_bytes(key.public_key_der)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(sig.signature)
    cmd = [
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(tmp_path / "pub.der"),
        "-keyform",
        "DER",
        "-signature",
        str(tmp_path / "sig"),
    ]
    if algorithm is SignAlgorithm.RSA_PSS_SHA256:
        cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
    out = subprocess.run([*cmd, str(tmp_path / "data")], capture_output=True, text=True)
    assert out.returncode == 0 and "Verified OK" in out.stdout, out.stdout + out.stderr
    assert device.verify(key.key_id, sig.signature, data=data, algorithm=algorithm)
    assert not device.verify(key.key_id, sig.signature, data=data + b"!", algorithm=algorithm)


def test_sign_a_digest_equals_signing_the_data(device: TokenDevice) -> None:
    key = device.generate_key(KeySpec.EC_P256, "k")
    digest = hashlib.sha256(b"abc").digest()
    sig = device.sign(key.key_id, digest=digest)
    assert device.verify(key.key_id, sig.signature, data=b"abc")


def test_csr_is_signed_by_the_token_and_certificate_imported_next_to_key(
    env: SoftHsmEnvironment, token: SoftHsmToken, device: TokenDevice
) -> None:
    key = device.generate_key(KeySpec.EC_P256, "hong")
    csr = x509.load_der_x509_csr(device.create_csr(key.key_id, "CN=Hong Gildong,O=bank-a,C=KR"))
    assert csr.is_signature_valid
    assert (
        csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == key.public_key_der
    )
    ca = DemoCa()
    cert_der = ca.issue(csr.public_bytes(serialization.Encoding.DER))
    info = device.import_certificate(cert_der)
    assert info.key_id == key.key_id and info.subject == "CN=Hong Gildong,O=bank-a,C=KR"
    assert info.renewal is RenewalState.VALID
    listed = device.list_certificates()
    assert [c.der for c in listed] == [cert_der]
    assert device.key(key.key_id).has_certificate
    out = env.pkcs11_tool("--token-label", token.label, "--login", "--pin", token.pin, "-O")
    assert "Certificate Object" in out.stdout and "Hong Gildong" in out.stdout
    with pytest.raises(AlreadyPresent):
        device.import_certificate(cert_der)
    renewed = ca.issue(csr.public_bytes(serialization.Encoding.DER))
    device.import_certificate(renewed, replace=True)
    assert [c.der for c in device.list_certificates()] == [renewed]


def test_rsa_pss_csr(device: TokenDevice) -> None:
    key = device.generate_key(KeySpec.RSA_2048, "rsa")
    csr = x509.load_der_x509_csr(device.create_csr(key.key_id, "CN=x,C=KR", pss=True))
    assert csr.is_signature_valid


def test_certificate_without_matching_key_is_refused(device: TokenDevice) -> None:
    device.generate_key(KeySpec.EC_P256, "mine")
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=other")
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(other, hashes.SHA256())
    )
    before = _objects(device)
    with pytest.raises(WrongState, match="no key pair"):
        device.import_certificate(cert.public_bytes(serialization.Encoding.DER))
    with pytest.raises(BadRequest):
        device.import_certificate(b"not a certificate")
    assert _objects(device) == before


def test_bad_requests_change_nothing(device: TokenDevice) -> None:
    key = device.generate_key(KeySpec.EC_P256, "k")
    before = _objects(device)
    with pytest.raises(NoSuchObject):
        device.sign(b"\x99", data=b"x")
    with pytest.raises(BadRequest, match="at most 4096"):
        device.sign(key.key_id, data=bytes(4097))
    with pytest.raises(BadRequest, match="does not fit"):
        device.sign(key.key_id, data=b"x", algorithm=SignAlgorithm.RSA_PSS_SHA256)
    with pytest.raises(BadRequest):
        device.sign(key.key_id, digest=b"short")
    with pytest.raises(WrongState, match="CKM_ECDSA_SHA256"):  # SoftHSM2 lacks it
        device.sign(key.key_id, data=b"x", token_hashes=True)
    with pytest.raises(AlreadyPresent):
        device.generate_key(KeySpec.EC_P256, "again", key_id=key.key_id)
    with pytest.raises(BadRequest):
        device.generate_key(KeySpec.EC_P256, "")
    with pytest.raises(BadRequest):
        device.create_csr(key.key_id, "not a name")
    with pytest.raises(NoSuchObject):
        device.delete(b"\x99")
    assert _objects(device) == before


def test_delete_scopes(device: TokenDevice) -> None:
    key = device.generate_key(KeySpec.EC_P256, "k")
    ca = DemoCa()
    device.import_certificate(ca.issue(device.create_csr(key.key_id, "CN=k")))
    assert device.delete(key.key_id, DeleteScope.CERTIFICATE) == 1
    assert device.list_certificates() == []
    assert device.delete(key.key_id, DeleteScope.KEY_PAIR) == 2
    assert device.list_keys() == []


def test_mechanism_the_token_lacks_in_a_restricted_softhsm(tmp_path: Path) -> None:
    """A SoftHSM2 allowing only a few mechanisms (no CKM_RSA_PKCS_PSS), in its own process as
    the configuration is per process: PSS is refused before anything reaches the token."""
    mechs = ("CKM_RSA_PKCS_KEY_PAIR_GEN", "CKM_RSA_PKCS", "CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA")
    script = textwrap.dedent(f"""
        import sys
        MECHS = {mechs!r}
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from simulators.token.softhsm import SoftHsmEnvironment
        env = SoftHsmEnvironment(Path({str(tmp_path)!r}), mechanisms=MECHS)
        env.activate()
        tok = env.init_token("restricted")
        from drivers.pkcs11 import Pkcs11Module, Pkcs11TokenSession
        from devices.token import TokenDevice, KeySpec, SignAlgorithm
        from devices.errors import WrongState
        m = Pkcs11Module(env.module)
        m.login(tok.serial, tok.pin)
        d = TokenDevice(Pkcs11TokenSession(m, tok.serial))
        k = d.generate_key(KeySpec.RSA_2048, "r")
        d.sign(k.key_id, data=b"x", algorithm=SignAlgorithm.RSA_PKCS1V15_SHA256)
        try:
            d.sign(k.key_id, data=b"x", algorithm=SignAlgorithm.RSA_PSS_SHA256)
        except WrongState as e:
            print("refused:", e)
        m.logout(tok.serial)
        m.close()
    """)
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "refused: the token does not support mechanism CKM_RSA_PKCS_PSS" in out.stdout


def test_sign_many_signs_in_order_on_one_session_and_stops_at_the_first_bad_input(
    device: TokenDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of signatures with one key leases one pooled session for all; an input that
    cannot be signed raises its error with the signatures before it kept, and nothing after
    it is signed."""
    key = device.generate_key(KeySpec.EC_P256, "run", key_id=b"\x5a\x01")
    public = device.public_key(key.key_id)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    session = device.session
    assert isinstance(session, Pkcs11TokenSession)
    module = session.module
    device.sign(key.key_id, digest=bytes(32))  # the key's lookups are cached from here on
    leases: list[str] = []
    lease = module.session

    def counted(serial: str) -> Any:
        leases.append(serial)
        return lease(serial)

    monkeypatch.setattr(module, "session", counted)
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    out: list[Any] = []
    device.sign_many(key.key_id, [(None, d) for d in digests], out)
    assert len(leases) == 1
    assert [s.key_id for s in out] == [key.key_id] * 5
    for digest, sig in zip(digests, out, strict=True):
        public.verify(sig.signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    leases.clear()
    out = []
    with pytest.raises(BadRequest, match="SHA-256 digest is 32 bytes"):
        device.sign_many(key.key_id, [(None, digests[0]), (b"data", None), (None, b"short"),
                                      (None, digests[1])], out)
    assert len(out) == 2 and len(leases) == 1
    public.verify(out[1].signature, b"data", ec.ECDSA(hashes.SHA256()))
