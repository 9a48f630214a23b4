"""Manufacturers' seed files: PSKC key containers (RFC 6030), read with python-pskc.

A file is read whole and every key package is checked before anything is returned, so a
caller can import all of a file or none of it: ``read`` returns one ``SeedRecord`` per device
authd can run, or raises ``BadRequest`` naming every key package it cannot import and why.
Seeds are held in ``SeedRecord.seed`` only; no message, ``repr`` or error ever contains one.

What a key package must be to be imported (anything else refuses the file):

- an HOTP or TOTP key (the PSKC algorithm profiles ``urn:ietf:params:xml:ns:keyprov:pskc:hotp``
  and ``...:totp``) with HMAC-SHA1, -SHA256 or -SHA512 (``<Suite>``, default SHA1);
- a decimal response of 6, 7 or 8 digits (``<ResponseFormat Length Encoding="DECIMAL">``),
  without a Luhn check digit and without a challenge (OCRA);
- the device's serial (``<DeviceInfo><SerialNo>``) in authd's form, once in the file;
- the secret itself, 16..64 bytes, in plain or encrypted with a pre-shared key or a key derived
  from a password (PBKDF2), each encrypted value with its MAC when the cipher is CBC
  (RFC 6030 §6.1.1); not a key derived from a master key or wrapped with a public key;
- not expired (``<Policy><ExpiryDate>``, ``<DeviceInfo><ExpiryDate>``), usable for OTP
  (``<KeyUsage>``), without a PIN that would be part of the code.

A key package holding the device's PIN (``...:pskc:pin``), referenced by an imported key whose
PIN the device checks itself (``PINUsageMode="Local"``), is not imported: authd stores no PIN.

Signatures (RFC 6030 §7): ``signers`` maps a manufacturer's name (``<DeviceInfo><Manufacturer>``)
to the certificate its files are signed with. A file naming such a manufacturer must carry an
XML signature (signxml, through python-pskc) that verifies against that certificate; the keys
are then read from what the signature covers, never from the rest of the document. With
``signed_only`` every file must be signed by a manufacturer of ``signers``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import Any
from xml.etree.ElementTree import ParseError

import pskc
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as defused
from pskc.exceptions import DecryptionError, KeyDerivationError, PSKCError
from pskc.key import EncryptedValue

from devices.errors import BadRequest
from devices.otp.codes import Algorithm
from devices.otp.rules import COUNTER_MAX, SERIAL, Kind, Params

PROFILE = "urn:ietf:params:xml:ns:keyprov:pskc"
PIN_PROFILE = "pin"
# RFC 6238's time step when a TOTP key names none (<TimeInterval>).
DEFAULT_TIME_INTERVAL = 30
SEED_BYTES = (16, 64)
# A device clock drift (in time steps) beyond this is not a drift but a broken clock.
MAX_DRIFT = 10_000
# PBKDF2 iterations a file may ask for before it is refused (a file must not tie up the
# center for minutes): about 2-5 s of one core.
MAX_PBKDF2_ITERATIONS = 5_000_000
# Problems listed in one error; the rest are counted.
MAX_LISTED = 20


@unique
class Protection(StrEnum):
    """How the seeds in a file are protected (RFC 6030 §6)."""

    NONE = "none"
    PRE_SHARED_KEY = "pre_shared_key"  # §6.1
    PASSWORD = "password"  # §6.2, PBKDF2
    PUBLIC_KEY = "public_key"  # §6.3: not supported


@dataclass(frozen=True)
class SeedRecord:
    """One device of the file that authd can run."""

    package: int  # the key package's position in the file, from 1
    key_id: str
    serial: str
    params: Params
    counter: int  # HOTP: the next counter the device uses
    drift: int  # TOTP: the device's clock drift in steps
    expires: float  # seconds since the epoch; 0 when the file names no end
    manufacturer: str
    seed: bytes = field(repr=False)


@dataclass(frozen=True)
class Skipped:
    """A key package that is not imported, for a reason that does not refuse the file."""

    package: int
    key_id: str
    serial: str
    reason: str


@unique
class Signature(StrEnum):
    """What the file's signature (RFC 6030 §7) told."""

    NONE = "none"  # not signed, and no certificate asks for it
    VERIFIED = "verified"  # signed, verified against the manufacturer's certificate
    UNCHECKED = "unchecked"  # signed by a manufacturer no certificate is configured for


@dataclass(frozen=True)
class SeedFile:
    records: tuple[SeedRecord, ...]
    skipped: tuple[Skipped, ...]
    protection: Protection
    digest: str  # SHA-256 of the file, hex: names the file in the audit trail
    signature: Signature = Signature.NONE
    signer: str = ""  # the manufacturer whose certificate verified the signature


@dataclass(frozen=True)
class Probe:
    protection: Protection
    key_name: str  # the name the file gives the key or password, '' when none


def _load(data: bytes) -> pskc.PSKC:
    if not data:
        raise BadRequest("the PSKC file is empty", field="pskc", reason="PSKC_UNREADABLE")
    try:
        # python-pskc parses with lxml when it is installed (signxml needs it), and lxml
        # expands entities: the file is first read with defusedxml, which refuses any
        # document type, entity or external reference, so nothing such reaches python-pskc.
        defused.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise BadRequest("the file declares a document type, XML entities or external "
                         "references, which a PSKC key container never has; nothing was "
                         "imported",
                         field="pskc", reason="PSKC_UNREADABLE") from None
    except ParseError as exc:
        raise BadRequest(f"the file cannot be read as XML: {exc} (a truncated or damaged "
                         "file, or not PSKC); nothing was imported", field="pskc",
                         reason="PSKC_UNREADABLE") from None
    try:
        return pskc.PSKC(io.BytesIO(data))
    except PSKCError as exc:
        raise BadRequest(f"the file cannot be read as a PSKC key container (RFC 6030): {exc} "
                         "(a truncated or damaged file, or not PSKC); nothing was imported",
                         field="pskc", reason="PSKC_UNREADABLE") from None
    except Exception as exc:  # malformed values inside the XML (base64, numbers, dates)
        raise BadRequest("the file cannot be read as a PSKC key container (RFC 6030): a "
                         f"malformed value ({type(exc).__name__}); nothing was imported",
                         field="pskc", reason="PSKC_UNREADABLE") from None


def _protection(container: pskc.PSKC) -> Probe:
    enc = container.encryption
    name = enc.key_name or ""
    algorithm = enc.algorithm or ""
    if "rsa" in algorithm.lower():
        return Probe(Protection.PUBLIC_KEY, name)
    if enc.derivation.algorithm:
        return Probe(Protection.PASSWORD, name)
    encrypted = any(isinstance(getattr(key, "_secret", None), EncryptedValue)
                    for key in container.keys)
    if algorithm or name or encrypted:
        return Probe(Protection.PRE_SHARED_KEY, name)
    return Probe(Protection.NONE, "")


def probe(data: bytes) -> Probe:
    """How ``data``'s seeds are protected, without decrypting anything (for asking the
    operator for the right key or password)."""
    return _protection(_load(data))


def _manufacturers(container: pskc.PSKC) -> set[str]:
    return {k.manufacturer for k in container.keys if k.manufacturer}


def _signature_refused(message: str, reason: str, manufacturer: str) -> BadRequest:
    return BadRequest(f"{message}; nothing was imported", field="pskc", reason=reason,
                      metadata={"manufacturer": manufacturer})


def _verified(container: pskc.PSKC, signers: Mapping[str, str], signed_only: bool,
              vouch: Callable[[str], None] | None = None) -> tuple[pskc.PSKC, Signature, str]:
    """The part of ``container`` its signature covers, when a certificate asks for one (and
    how the signature was found); refuses a file that is unsigned, altered or signed with
    another key when its manufacturer's certificate is configured."""
    named = _manufacturers(container)
    wanted = sorted(m for m in named if m in signers)
    signed = container.signature.is_signed
    if not wanted and signed:
        # A file whose names were changed still carries the certificate it was signed with:
        # one configured for a manufacturer makes it that manufacturer's file.
        wanted = _certified(container.signature.certificate, signers)
    if not wanted:
        if signed_only:
            who = ", ".join(sorted(named)) or "(none named)"
            raise _signature_refused(
                f"only files signed by a manufacturer with a configured certificate are "
                f"imported ([otp] pskc_signed_only), and this file's manufacturer {who} has "
                "none: ask the manufacturer for a signed file and configure its certificate "
                "in [otp] pskc_signers", "PSKC_SIGNER_UNKNOWN", ", ".join(sorted(named)))
        return container, Signature.UNCHECKED if signed else Signature.NONE, ""
    if len({signers[m] for m in wanted}) > 1:
        raise _signature_refused(
            f"the file names manufacturers {', '.join(wanted)}, each with a certificate of its "
            "own; one signature cannot be verified against both: import each manufacturer's "
            "devices from a file of their own", "PSKC_SIGNATURE_INVALID", ", ".join(wanted))
    manufacturer = wanted[0]
    if not signed:
        raise _signature_refused(
            f"the file names manufacturer {manufacturer!r}, whose seed files must be signed "
            "(RFC 6030 §7, the certificate configured in [otp] pskc_signers), and it carries "
            "no signature: ask the manufacturer for the signed file",
            "PSKC_SIGNATURE_REQUIRED", manufacturer)
    if vouch is not None:
        vouch(manufacturer)  # the certificate itself first: signxml refuses an expired one
    try:
        container.signature.verify(certificate=signers[manufacturer])
        covered = container.signature.signed_pskc
    except Exception:  # signxml's InvalidSignature and its kin, malformed signatures
        raise _signature_refused(
            f"the file's signature does not verify against the certificate configured for "
            f"manufacturer {manufacturer!r} (the file was altered after it was signed, or "
            "signed with another key): ask the manufacturer for the file again",
            "PSKC_SIGNATURE_INVALID", manufacturer) from None
    inside = _manufacturers(covered)
    if manufacturer not in inside:
        raise _signature_refused(
            f"the file is signed with the certificate configured for manufacturer "
            f"{manufacturer!r}, but its key packages name {', '.join(sorted(inside)) or 'none'}: "
            "configure the manufacturer under the name its files give", "PSKC_SIGNATURE_INVALID",
            manufacturer)
    if {m for m in inside if m in signers} != {manufacturer} or \
            len(list(covered.keys)) != len(list(container.keys)):
        raise _signature_refused(
            f"the signature verifies for manufacturer {manufacturer!r}, but it does not "
            "cover every key package of the file (packages were added beside the signed "
            "part): ask the manufacturer for the file again", "PSKC_SIGNATURE_INVALID",
            manufacturer)
    return covered, Signature.VERIFIED, manufacturer


def _der(pem: str | None) -> bytes | None:
    try:
        return ssl.PEM_cert_to_DER_cert(pem.strip()) if pem else None
    except ValueError:
        return None


def _certified(embedded: str | None, signers: Mapping[str, str]) -> list[str]:
    """The manufacturers configured with the certificate embedded in the signature."""
    der = _der(embedded)
    return sorted(m for m, pem in signers.items() if der is not None and _der(pem) == der)


def _unlock(container: pskc.PSKC, found: Probe, key: bytes | None,
            password: str | None) -> None:
    if found.protection is Protection.NONE:
        return
    if found.protection is Protection.PUBLIC_KEY:
        raise BadRequest("the file's seeds are encrypted with a public key (RFC 6030 §6.3, "
                         f"{container.encryption.algorithm}); authd imports files protected by "
                         "a pre-shared key or a password (§6.1, §6.2): ask the manufacturer "
                         "for one of those; nothing was imported",
                         field="pskc", reason="PSKC_PROTECTION_UNSUPPORTED")
    named = f" ({found.key_name!r})" if found.key_name else ""
    if key is not None:
        container.encryption.key = key
        return
    if password is None:
        wanted = ("password" if found.protection is Protection.PASSWORD
                  else "pre-shared key")
        raise BadRequest(f"the file's seeds are encrypted: give the {wanted}{named}; nothing "
                         "was imported", field="password" if found.protection is
                         Protection.PASSWORD else "pre_shared_key",
                         reason="PSKC_KEY_REQUIRED",
                         metadata={"protection": found.protection.value,
                                   "key_name": found.key_name})
    if found.protection is not Protection.PASSWORD:
        raise BadRequest(f"the file is encrypted with a pre-shared key{named}, not a key "
                         "derived from a password: give the key; nothing was imported",
                         field="pre_shared_key", reason="PSKC_KEY_REQUIRED",
                         metadata={"protection": found.protection.value,
                                   "key_name": found.key_name})
    iterations = container.encryption.derivation.pbkdf2_iterations or 0
    if iterations > MAX_PBKDF2_ITERATIONS:
        raise BadRequest(f"the file asks for {iterations} PBKDF2 iterations; authd derives "
                         f"keys with at most {MAX_PBKDF2_ITERATIONS}; nothing was imported",
                         field="pskc", reason="PSKC_PROTECTION_UNSUPPORTED")
    try:
        container.encryption.derive_key(password)
    except KeyDerivationError as exc:
        raise BadRequest(f"the key cannot be derived from the password: {exc}; nothing was "
                         "imported", field="pskc",
                         reason="PSKC_PROTECTION_UNSUPPORTED") from None


def _profile(algorithm: str | None) -> str:
    """``hotp``, ``totp``, ``pin``... for a PSKC algorithm profile URI; '' for another."""
    if not algorithm or not algorithm.lower().startswith(PROFILE):
        return ""
    return algorithm[len(PROFILE):].lstrip(":#").lower()


def _hash(suite: str | None) -> Algorithm | None:
    if not suite:
        return Algorithm.SHA1
    name = suite.strip().upper().removeprefix("HMAC-").replace("-", "")
    try:
        return Algorithm(name)
    except ValueError:
        return None


def _epoch(value: Any) -> float:
    if not isinstance(value, dt.datetime):
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


class _Undecryptable(Exception):
    pass


def _value(key: Any, name: str) -> Any:
    """A key's value (decrypted), or ``_Undecryptable`` with the library's reason."""
    try:
        return getattr(key, name)
    except DecryptionError as exc:
        raise _Undecryptable(str(exc)) from None


def _check_mac(key: Any, protection: Protection) -> str | None:
    """RFC 6030 §6.1.1: a value encrypted without integrity (CBC) carries its MAC.

    python-pskc checks a MAC that is present but accepts a value without one; it keeps the
    encrypted value in the key's ``_<name>`` attribute (read with a default, so a library that
    stops doing so makes this check pass nothing rather than fail)."""
    if protection is Protection.NONE:
        return None
    for name in ("secret", "counter", "time_offset", "time_interval", "time_drift"):
        value = getattr(key, "_" + name, None)
        if (isinstance(value, EncryptedValue) and "cbc" in (value.algorithm or "cbc").lower()
                and not value.mac_value):
            return (f"the encrypted {name.replace('_', ' ')} has no MAC (<ValueMAC>, "
                    "RFC 6030 §6.1.1): a wrong key could not be told from a right one")
    return None


def _pin_keys(keys: Iterable[Any]) -> dict[str, str]:
    """PIN key ids referenced by OTP keys the device checks the PIN of itself -> the serial."""
    return {k.policy.pin_key_id: k.serial or "" for k in keys
            if k.policy.pin_key_id and (k.policy.pin_usage or "").lower() == "local"}


def _problems(key: Any, now: float) -> list[str]:
    """Why this OTP key cannot be run by authd (values that need no decryption)."""
    problems: list[str] = []
    serial = key.serial
    if not serial:
        problems.append("no device serial (<DeviceInfo><SerialNo>)")
    elif SERIAL.fullmatch(serial) is None:
        problems.append("the serial is not 4..32 letters, digits or dashes")
    if key.challenge_encoding or key.challenge_min_length or key.challenge_max_length:
        problems.append("a challenge-response key (OCRA): authd runs HOTP and TOTP only")
    if key.response_length is None:
        problems.append("no response length (<ResponseFormat Length>): the number of digits "
                        "the device shows is unknown")
    elif key.response_length not in (6, 7, 8):
        problems.append(f"{key.response_length} digits: authd runs devices of 6, 7 or 8")
    if key.response_length is not None and (key.response_encoding or "").upper() != "DECIMAL":
        problems.append(f"a {key.response_encoding or 'unspecified'} response: authd checks "
                        "decimal codes only")
    if key.response_check:
        problems.append("a Luhn check digit after the code: authd checks plain codes")
    if _hash(key.algorithm_suite) is None:
        problems.append(f"the hash {key.algorithm_suite!r}: authd runs HMAC-SHA1, -SHA256 "
                        "and -SHA512")
    policy = key.policy
    if policy.unknown_policy_elements:
        problems.append("a policy element authd does not know (<Policy>)")
    if policy.key_usage and "OTP" not in policy.key_usage:
        problems.append(f"a key for {', '.join(policy.key_usage)}, not for OTP (<KeyUsage>)")
    usage = (policy.pin_usage or "").lower()
    if policy.pin_key_id and usage != "local":
        problems.append(f"a PIN used {usage or 'in an unstated way'} with the code: authd "
                        "checks codes without a PIN (only a PIN the device checks itself, "
                        "PINUsageMode=\"Local\", is accepted)")
    for what, when in (("key", policy.expiry_date), ("device", key.expiry_date)):
        ts = _epoch(when)
        if ts and ts <= now:
            problems.append(f"the {what} expired on {_day(ts)}")
    return problems


def _record(package: int, key: Any, kind: Kind, protection: Protection,
            now: float) -> SeedRecord | list[str]:
    problems = _problems(key, now)
    mac = _check_mac(key, protection)
    if mac:
        problems.append(mac)
    secret = _value(key, "secret")
    if secret is None:
        reference = " (derived from a master key, <KeyReference>)" if key.key_reference else ""
        problems.append(f"no secret in the package{reference}: authd imports the seed itself")
    elif not SEED_BYTES[0] <= len(secret) <= SEED_BYTES[1]:
        problems.append(f"a secret of {len(secret)} bytes: authd needs {SEED_BYTES[0]} to "
                        f"{SEED_BYTES[1]} (RFC 4226 asks for at least 128 bits)")
    counter = _value(key, "counter") or 0
    if not 0 <= counter <= COUNTER_MAX:
        problems.append("the counter is beyond 2^63-1")
    interval = _value(key, "time_interval") or DEFAULT_TIME_INTERVAL
    drift = _value(key, "time_drift") or 0
    if kind is Kind.TOTP and not 15 <= interval <= 300:
        problems.append(f"a time step of {interval} s: authd runs 15 to 300 s")
    if kind is Kind.TOTP and abs(drift) > MAX_DRIFT:
        problems.append(f"a clock drift of {drift} steps (at most {MAX_DRIFT})")
    if problems:
        return problems
    algorithm = _hash(key.algorithm_suite) or Algorithm.SHA1
    period = interval if kind is Kind.TOTP else 60
    params = Params(kind, int(key.response_length), int(period), algorithm).check()
    expires = [ts for ts in (_epoch(key.policy.expiry_date), _epoch(key.expiry_date)) if ts]
    return SeedRecord(package=package, key_id=key.id or "", serial=key.serial,
                      params=params, counter=int(counter) if kind is Kind.HOTP else 0,
                      drift=int(drift) if kind is Kind.TOTP else 0,
                      expires=min(expires) if expires else 0.0,
                      manufacturer=key.manufacturer or "", seed=bytes(secret))


def _label(package: int, key: Any) -> str:
    parts = [f"key {key.id}"] if key is not None and key.id else []
    if key is not None and key.serial:
        parts.append(f"serial {key.serial}")
    return f"key package {package}" + (f" ({', '.join(parts)})" if parts else "")


def _refuse(problems: list[tuple[int, str]], total: int, *, undecryptable: int,
            every: bool) -> BadRequest:
    packages = sorted({p for p, _ in problems})
    listed = "; ".join(text for _, text in problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    if more > 0:
        listed += f"; and {more} more"
    hint = ""
    if undecryptable and every:
        hint = (" (is the key or password right? with a wrong one no seed can be "
                "decrypted)")
    elif undecryptable:
        hint = (" (the key or password decrypts other packages: those that fail were "
                "altered or damaged)")
    return BadRequest(f"PSKC file refused, nothing was imported: {len(packages)} of {total} "
                      f"key package(s) cannot be imported{hint}: {listed}", field="pskc",
                      reason="PSKC_DECRYPTION_FAILED" if undecryptable and every
                      else "PSKC_PACKAGE_REFUSED",
                      metadata={"packages": ",".join(str(p) for p in packages[:100]),
                                "refused": len(packages), "total": total})


def read(data: bytes, *, now: float, key: bytes | None = None,
         password: str | None = None, signers: Mapping[str, str] | None = None,
         signed_only: bool = False,
         vouch: Callable[[str], None] | None = None) -> SeedFile:
    """Every device of the PSKC file ``data``, or ``BadRequest`` naming each key package that
    cannot be imported and why (nothing is returned then). ``key``: the pre-shared key (or a
    key derived beforehand); ``password``: the password a PBKDF2 key is derived from;
    ``signers``: manufacturer -> PEM certificate its files must be signed with;
    ``signed_only``: refuse a file no certificate of ``signers`` verifies; ``vouch``: called
    with the manufacturer whose certificate a signed file is verified against, before the
    signature is checked or anything decrypted, to refuse (raise) when that certificate does
    not count now (expired, untrusted, revoked)."""
    container, signature, signer = _verified(_load(data), signers or {}, signed_only, vouch)
    found = _protection(container)
    _unlock(container, found, key, password)
    devices = list(container.devices)
    if not devices:
        raise BadRequest("the PSKC file holds no key package; nothing was imported",
                         field="pskc", reason="PSKC_PACKAGE_REFUSED")
    pins = _pin_keys(k for d in devices for k in d.keys)
    first: dict[str, int] = {}  # serial -> the first OTP key package naming it
    for package, device in enumerate(devices, start=1):
        for k in device.keys:
            if _profile(k.algorithm) != PIN_PROFILE and k.serial:
                first.setdefault(k.serial, package)
    records: list[SeedRecord] = []
    skipped: list[Skipped] = []
    problems: list[tuple[int, str]] = []
    attempted = undecryptable = 0
    for package, device in enumerate(devices, start=1):
        keys = list(device.keys)
        if len(keys) != 1:
            problems.append((package, f"{_label(package, keys[0] if keys else None)}: "
                                      f"{len(keys)} keys in one package (RFC 6030: one)"))
            continue
        k = keys[0]
        profile = _profile(k.algorithm)
        if profile == PIN_PROFILE and k.id in pins and pins[k.id] == (k.serial or ""):
            skipped.append(Skipped(package, k.id or "", k.serial or "",
                                   "the device's PIN, checked by the device itself: authd "
                                   "stores no PIN"))
            continue
        if profile not in (Kind.HOTP.value, Kind.TOTP.value):
            problems.append((package, f"{_label(package, k)}: the algorithm "
                                      f"{k.algorithm or '(none)'} is not HOTP or TOTP"))
            continue
        attempted += 1
        try:
            result = _record(package, k, Kind(profile), found.protection, now)
        except _Undecryptable as exc:
            undecryptable += 1
            problems.append((package, f"{_label(package, k)}: cannot decrypt the seed ({exc})"))
            continue
        reasons = result if isinstance(result, list) else []
        if k.serial and first.get(k.serial, package) != package:
            reasons.append(f"the serial of key package {first[k.serial]} again (authd keeps "
                           "one seed per device)")
        if reasons:
            problems.append((package, f"{_label(package, k)}: {'; '.join(reasons)}"))
        elif isinstance(result, SeedRecord):
            records.append(result)
    if problems:
        raise _refuse(problems, len(devices), undecryptable=undecryptable,
                      every=undecryptable == attempted)
    return SeedFile(tuple(records), tuple(skipped), found.protection,
                    hashlib.sha256(data).hexdigest(), signature, signer)
