"""The token session interface of devices.token, implemented over python-pkcs11.

Each call leases a pooled session of the module; nothing here keeps a PIN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pkcs11
import pkcs11.exceptions as p11e
from pkcs11 import Attribute, Mechanism, ObjectClass

from drivers.pkcs11.errors import ObjectMissing, TokenInvalidInput, pkcs11_errors
from drivers.pkcs11.module import Pkcs11Module, PooledSession

_PUBLIC_ATTRS = {
    int(ObjectClass.PUBLIC_KEY): (
        Attribute.KEY_TYPE,
        Attribute.MODULUS,
        Attribute.PUBLIC_EXPONENT,
        Attribute.EC_PARAMS,
        Attribute.EC_POINT,
    ),
    int(ObjectClass.PRIVATE_KEY): (Attribute.KEY_TYPE, Attribute.SENSITIVE, Attribute.EXTRACTABLE),
    int(ObjectClass.CERTIFICATE): (Attribute.VALUE,),
}
_CLASSES = tuple(_PUBLIC_ATTRS)


# Runs of at least this many signatures are signed with a session copy of the key on SoftHSM2
# (PooledSession.session_copy): the check that the token is still there (~50 µs) costs what
# about two signatures save (~25-40 µs each), so shorter runs sign with the key itself.
COPY_RUN = 4


@dataclass(frozen=True)
class ObjectRecord:
    object_class: int
    key_id: bytes
    label: str
    key_type: int | None = None
    modulus: bytes | None = None
    public_exponent: bytes | None = None
    ec_params: bytes | None = None
    ec_point: bytes | None = None
    value: bytes | None = None
    sensitive: bool | None = None
    extractable: bool | None = None


def _attr(obj: pkcs11.Object, attribute: Attribute) -> Any:
    try:
        return obj[attribute]
    except (p11e.AttributeTypeInvalid, p11e.AttributeSensitive, KeyError, NotImplementedError):
        return None


def _record(obj: pkcs11.Object, object_class: int) -> ObjectRecord:
    values: dict[str, Any] = {}
    for attribute in _PUBLIC_ATTRS[object_class]:
        value = _attr(obj, attribute)
        if value is not None:
            values[attribute.name.lower()] = value
    key_type = values.pop("key_type", None)
    return ObjectRecord(
        object_class=object_class,
        key_id=bytes(_attr(obj, Attribute.ID) or b""),
        label=str(_attr(obj, Attribute.LABEL) or ""),
        key_type=int(key_type) if key_type is not None else None,
        **values,
    )


class Pkcs11TokenSession:
    """devices.token.TokenSession for one token of a :class:`Pkcs11Module`."""

    def __init__(self, module: Pkcs11Module, serial: str, label: str = "") -> None:
        self.module = module
        self.serial = serial
        self._label = label or serial
        self._mechanisms: frozenset[int] | None = None

    @property
    def token_label(self) -> str:
        return self._label

    def mechanisms(self) -> frozenset[int]:
        if self._mechanisms is None:
            with (
                self.module.session(self.serial) as pooled,
                pkcs11_errors("reading mechanisms", self._label),
            ):
                self._mechanisms = frozenset(
                    int(m) for m in pooled.session.token.slot.get_mechanisms()
                )
        return self._mechanisms

    def generate_key_pair(
        self, key_type: int, key_id: bytes, label: str, *, rsa_bits: int = 0, ec_params: bytes = b""
    ) -> None:
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        }
        public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True}
        with (
            self.module.session(self.serial) as pooled,
            pkcs11_errors("generating a key pair", self._label),
        ):
            session = pooled.session
            if key_type == int(pkcs11.KeyType.EC):
                params = session.create_domain_parameters(
                    pkcs11.KeyType.EC, {Attribute.EC_PARAMS: ec_params}, local=True
                )
                params.generate_keypair(
                    id=key_id,
                    label=label,
                    store=True,
                    public_template=public_template,
                    private_template=private_template,
                )
            elif key_type == int(pkcs11.KeyType.RSA):
                session.generate_keypair(
                    pkcs11.KeyType.RSA,
                    rsa_bits,
                    id=key_id,
                    label=label,
                    store=True,
                    public_template=public_template,
                    private_template=private_template,
                )
            else:
                raise TokenInvalidInput(f"token {self._label!r}: unsupported key type {key_type}")
        self.module.invalidate_objects(self.serial)

    def find_objects(
        self, object_class: int | None = None, key_id: bytes | None = None
    ) -> Sequence[ObjectRecord]:
        if object_class is not None and key_id is not None:
            cls = int(object_class)
            return self.module.cached(
                self.serial, (cls, key_id), lambda: self._find((cls,), key_id)
            )
        return self._find(_CLASSES if object_class is None else (int(object_class),), key_id)

    def _find(self, classes: tuple[int, ...], key_id: bytes | None) -> tuple[ObjectRecord, ...]:
        out: list[ObjectRecord] = []
        with (
            self.module.session(self.serial) as pooled,
            pkcs11_errors("listing objects", self._label),
        ):
            for cls in classes:
                attrs: dict[Attribute, Any] = {
                    Attribute.CLASS: ObjectClass(cls),
                    Attribute.TOKEN: True,
                }
                if key_id is not None:
                    attrs[Attribute.ID] = key_id
                for obj in pooled.session.get_objects(attrs):
                    out.append(_record(obj, cls))
        if not out:  # a removed token lists nothing: say it is absent, not empty
            self.module.require_present(self.serial)
        return tuple(out)

    def _private_key(self, pooled: PooledSession, key_id: bytes) -> Any:
        cache_key = (int(ObjectClass.PRIVATE_KEY), key_id)
        obj = pooled.objects.get(cache_key)
        if obj is None:
            found = list(
                pooled.session.get_objects(
                    {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id,
                     Attribute.TOKEN: True}
                )
            )
            if not found:
                raise ObjectMissing(f"token {self._label!r}: no private key with id {key_id.hex()}")
            obj = pooled.objects[cache_key] = found[0]
        return obj

    def _signing_key(self, pooled: PooledSession, key_id: bytes) -> Any:
        """The object to sign a run with: on SoftHSM2 a session copy of the private key (it
        reads no file at each use), once the token object is seen to be there still (one
        attribute read: a copy would go on signing after its token was removed); else the
        key itself."""
        key = self._private_key(pooled, key_id)
        if not self.module.signs_with_copies:
            return key
        key[Attribute.SIGN]  # CKR_OBJECT_HANDLE_INVALID once the token is gone
        return pooled.session_copy(key)

    def sign(
        self, key_id: bytes, mechanism: int, data: bytes, pss: tuple[int, int, int] | None = None
    ) -> bytes:
        with self.module.session(self.serial) as pooled, pkcs11_errors("signing", self._label):
            param = (Mechanism(pss[0]), pkcs11.MGF(pss[1]), pss[2]) if pss is not None else None
            try:
                key = self._private_key(pooled, key_id)
                return bytes(key.sign(data, mechanism=Mechanism(mechanism), mechanism_param=param))
            except (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid):
                pooled.forget_objects()  # the key went away under the cache
                raise

    def sign_many(
        self,
        key_id: bytes,
        mechanism: int,
        payloads: Sequence[bytes],
        pss: tuple[int, int, int] | None,
        out: list[bytes],
    ) -> None:
        """Sign each payload with the same key and mechanism, in order, on one leased session
        (one lease and one key lookup for all); each signature is appended to ``out`` as it is
        made, so on an error ``out`` holds those made before it."""
        with self.module.session(self.serial) as pooled, pkcs11_errors("signing", self._label):
            param = (Mechanism(pss[0]), pkcs11.MGF(pss[1]), pss[2]) if pss is not None else None
            mech = Mechanism(mechanism)
            try:
                sign = (self._signing_key(pooled, key_id) if len(payloads) >= COPY_RUN
                        else self._private_key(pooled, key_id)).sign
                for payload in payloads:
                    out.append(bytes(sign(payload, mechanism=mech, mechanism_param=param)))
            except (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid):
                pooled.forget_objects()  # the key went away under the cache
                raise

    def create_certificate(
        self, key_id: bytes, label: str, value: bytes, subject: bytes, issuer: bytes, serial: bytes
    ) -> None:
        with (
            self.module.session(self.serial) as pooled,
            pkcs11_errors("storing a certificate", self._label),
        ):
            pooled.session.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.ID: key_id,
                    Attribute.LABEL: label,
                    Attribute.VALUE: value,
                    Attribute.SUBJECT: subject,
                    Attribute.ISSUER: issuer,
                    Attribute.SERIAL_NUMBER: serial,
                }
            )
        self.module.invalidate_objects(self.serial)

    def destroy_objects(self, key_id: bytes, object_class: int | None = None) -> int:
        classes = _CLASSES if object_class is None else (int(object_class),)
        count = 0
        with (
            self.module.session(self.serial) as pooled,
            pkcs11_errors("deleting objects", self._label),
        ):
            for cls in classes:
                attrs = {
                    Attribute.CLASS: ObjectClass(cls),
                    Attribute.TOKEN: True,
                    Attribute.ID: key_id,
                }
                for obj in list(pooled.session.get_objects(attrs)):
                    obj.destroy()
                    count += 1
        self.module.invalidate_objects(self.serial)
        return count
