"""A display OTP generator: shows the code a real token would show at any moment.

Codes come from pyotp, independent of the center's own code maths, so a test that types a
simulated token's code into the center checks one implementation against another.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field

import pyotp


@dataclass
class DisplayToken:
    serial: str
    seed: bytes
    kind: str = "totp"  # or "hotp"
    digits: int = 6
    period: int = 60
    algorithm: str = "SHA1"
    counter: int = 0  # HOTP: the counter of the next press
    clock_skew: float = 0.0  # a token whose clock runs ahead (+) or behind (-), in seconds
    _otp: pyotp.OTP = field(init=False, repr=False)

    def __post_init__(self) -> None:
        secret = base64.b32encode(self.seed).decode()
        digestmod = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256,
                     "SHA512": hashlib.sha512}[self.algorithm.upper()]
        if self.kind == "totp":
            self._otp = pyotp.TOTP(secret, digits=self.digits, interval=self.period,
                                   digest=digestmod)
        elif self.kind == "hotp":
            self._otp = pyotp.HOTP(secret, digits=self.digits, digest=digestmod)
        else:
            raise ValueError(f"unknown OTP kind {self.kind!r}")

    def code_at(self, unix_time: float) -> str:
        """TOTP: the code shown at ``unix_time``."""
        assert isinstance(self._otp, pyotp.TOTP)
        return self._otp.at(unix_time + self.clock_skew)

    def show(self) -> str:
        """The code on the display now (TOTP) or after a button press (HOTP)."""
        if isinstance(self._otp, pyotp.TOTP):
            return self.code_at(time.time())
        return self.press()

    def press(self) -> str:
        """HOTP: press the button; the next code appears and the counter moves on."""
        assert isinstance(self._otp, pyotp.HOTP)
        code = self._otp.at(self.counter)
        self.counter += 1
        return code

    @classmethod
    def from_uri(cls, uri: str, serial: str) -> DisplayToken:
        parsed = pyotp.parse_uri(uri)
        seed = base64.b32decode(parsed.secret + "=" * (-len(parsed.secret) % 8))
        if isinstance(parsed, pyotp.TOTP):
            return cls(serial, seed, "totp", parsed.digits, int(parsed.interval))
        counter = int(uri.split("counter=")[1].split("&")[0]) if "counter=" in uri else 0
        return cls(serial, seed, "hotp", parsed.digits, counter=counter)
