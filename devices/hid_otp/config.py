"""The 52-byte slot configuration structure and the configurations authd programs.

Layout: fixed (16) | uid (6) | key (16) | access code (6) | fixed size | ext flags |
tkt flags | cfg flags | rfu (2) | CRC (2, complemented, little-endian).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from devices.hid_otp.constants import (
    ACC_CODE_SIZE,
    CFG_CHAL_HMAC,
    CONFIG_CRC_OFFSET,
    CONFIG_SIZE,
    FIXED_SIZE,
    HMAC_KEY_SIZE,
    KEY_SIZE,
    OATH_SEED_SIZE,
    UID_SIZE,
    CfgFlag,
    ExtFlag,
    TktFlag,
)
from devices.hid_otp.crc import append_crc, check_crc
from devices.hid_otp.errors import InvalidConfigError

NO_ACCESS_CODE = b"\0" * ACC_CODE_SIZE
DELETE_CONFIG = b"\0" * CONFIG_SIZE  # an all-zero configuration deletes the slot

DEFAULT_EXT = ExtFlag.SERIAL_API_VISIBLE | ExtFlag.ALLOW_UPDATE
_HEAD = struct.Struct(f"{FIXED_SIZE}s{UID_SIZE}s{KEY_SIZE}s{ACC_CODE_SIZE}sBBBB2s")


def check_access_code(code: bytes | None) -> bytes:
    """The 6-byte access code, or six zero bytes for none."""
    if code is None:
        return NO_ACCESS_CODE
    if len(code) != ACC_CODE_SIZE:
        raise InvalidConfigError(f"an access code is {ACC_CODE_SIZE} bytes")
    return bytes(code)


@dataclass(frozen=True)
class SlotConfig:
    fixed: bytes = b""
    uid: bytes = b"\0" * UID_SIZE
    key: bytes = b"\0" * KEY_SIZE
    access_code: bytes = NO_ACCESS_CODE
    ext_flags: int = 0
    tkt_flags: int = 0
    cfg_flags: int = 0

    def __post_init__(self) -> None:
        if len(self.fixed) > FIXED_SIZE:
            raise InvalidConfigError(f"fixed part exceeds {FIXED_SIZE} bytes")
        if len(self.uid) != UID_SIZE or len(self.key) != KEY_SIZE:
            raise InvalidConfigError("uid must be 6 bytes and key 16 bytes")
        check_access_code(self.access_code)

    def __bytes__(self) -> bytes:
        head = _HEAD.pack(
            self.fixed.ljust(FIXED_SIZE, b"\0"),
            self.uid,
            self.key,
            self.access_code,
            len(self.fixed),
            self.ext_flags,
            self.tkt_flags,
            self.cfg_flags,
            b"\0\0",
        )
        return append_crc(head)

    @classmethod
    def from_bytes(cls, data: bytes) -> SlotConfig:
        if len(data) != CONFIG_SIZE or not check_crc(data):
            raise InvalidConfigError("not a valid configuration structure")
        fixed, uid, key, acc, fixed_size, ext, tkt, cfg, _rfu = _HEAD.unpack(
            data[:CONFIG_CRC_OFFSET]
        )
        if fixed_size > FIXED_SIZE:
            raise InvalidConfigError("fixed size out of range")
        return cls(fixed[:fixed_size], uid, key, acc, ext, tkt, cfg)

    @property
    def is_oath_hotp(self) -> bool:
        return bool(self.tkt_flags & TktFlag.OATH_HOTP) and not self.cfg_flags & CfgFlag.CHAL_YUBICO

    @property
    def is_chal_hmac(self) -> bool:
        return bool(self.tkt_flags & TktFlag.OATH_HOTP) and (
            self.cfg_flags & CFG_CHAL_HMAC == CFG_CHAL_HMAC
        )


def _split_20(secret: bytes) -> tuple[bytes, bytes]:
    """A 20-byte secret is stored as key (16 bytes) + the first 4 bytes of uid."""
    return secret[:KEY_SIZE], secret[KEY_SIZE:]


def hotp_config(
    seed: bytes,
    *,
    digits: int = 6,
    initial_counter: int = 0,
    token_id: bytes = b"",
    append_cr: bool = True,
    access_code: bytes | None = None,
    ext_flags: int = DEFAULT_EXT,
) -> SlotConfig:
    """OATH-HOTP (RFC 4226) with a 20-byte seed; each touch types the next code."""
    if len(seed) != OATH_SEED_SIZE:
        raise InvalidConfigError(f"an OATH-HOTP seed is {OATH_SEED_SIZE} bytes")
    if digits not in (6, 8):
        raise InvalidConfigError("OATH-HOTP codes have 6 or 8 digits")
    if initial_counter % 16 or not 0 <= initial_counter <= 0xFFFF0:
        raise InvalidConfigError("the initial counter is a multiple of 16 up to 1048560")
    key, uid_head = _split_20(seed)
    uid = uid_head + struct.pack(">H", initial_counter >> 4)
    tkt = TktFlag.OATH_HOTP | (TktFlag.APPEND_CR if append_cr else 0)
    cfg = CfgFlag.OATH_HOTP8 if digits == 8 else 0
    if token_id:
        cfg |= CfgFlag.OATH_FIXED_MODHEX2
    return SlotConfig(
        fixed=token_id,
        uid=uid,
        key=key,
        access_code=check_access_code(access_code),
        ext_flags=ext_flags,
        tkt_flags=int(tkt),
        cfg_flags=int(cfg),
    )


def hmac_sha1_config(
    key: bytes,
    *,
    require_touch: bool = False,
    variable_length: bool = True,
    access_code: bytes | None = None,
    ext_flags: int = DEFAULT_EXT,
) -> SlotConfig:
    """HMAC-SHA1 challenge-response with a 20-byte key."""
    if len(key) != HMAC_KEY_SIZE:
        raise InvalidConfigError(f"an HMAC-SHA1 key is {HMAC_KEY_SIZE} bytes")
    k, uid_head = _split_20(key)
    cfg = CFG_CHAL_HMAC
    if variable_length:
        cfg |= CfgFlag.HMAC_LT64
    if require_touch:
        cfg |= CfgFlag.CHAL_BTN_TRIG
    return SlotConfig(
        uid=uid_head + b"\0\0",
        key=k,
        access_code=check_access_code(access_code),
        ext_flags=ext_flags,
        tkt_flags=int(TktFlag.OATH_HOTP),
        cfg_flags=int(cfg),
    )
