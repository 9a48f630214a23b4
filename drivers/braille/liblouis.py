"""A small ctypes binding of liblouis (``liblouis.so.20``).

Only what authd needs: forward translation of print text into braille cells,
shown either as Unicode braille (``unicode.dis``) or as North American Braille
ASCII for BRF files (``en-us-brf.dis``), and the display-table lookup of dot
patterns.  Back-translation of Korean is not offered: liblouis' Korean tables
do not back-translate reliably.

liblouis keeps global state (compiled tables, static buffers), so every call
into the library holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from functools import lru_cache

from drivers.errors import DeviceAbsent, DriverError

LIBRARY_NAME = "liblouis.so.20"

UNICODE_DISPLAY = "unicode.dis"
BRF_DISPLAY = "en-us-brf.dis"
KOREAN_GRADE1 = "ko-g1.ctb"
KOREAN_GRADE2 = "ko-g2.ctb"

# liblouis log levels (liblouis.h: logLevels)
LOG_ERROR = 40000
LOG_OFF = 60000

# translation modes (liblouis.h: translationModes)
MODE_DOTS_IO = 0x40
MODE_UCBRL = 0x80

# the liblouis "dots" wide-character encoding: 0x8000 | dot bits (dot 1 = bit 0)
_LOU_DOTS = 0x8000

MAX_INPUT_CHARS = 4096

_lock = threading.Lock()


class LiblouisError(DriverError):
    """liblouis refused a table or a translation."""


class _Library:
    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(LIBRARY_NAME)
        except OSError as exc:
            found = ctypes.util.find_library("louis")
            if found is None:
                raise DeviceAbsent("liblouis is not installed") from exc
            lib = ctypes.CDLL(found)
        lib.lou_version.restype = ctypes.c_char_p
        lib.lou_version.argtypes = []
        lib.lou_charSize.restype = ctypes.c_int
        lib.lou_charSize.argtypes = []
        lib.lou_setLogLevel.restype = None
        lib.lou_setLogLevel.argtypes = [ctypes.c_int]
        lib.lou_checkTable.restype = ctypes.c_int
        lib.lou_checkTable.argtypes = [ctypes.c_char_p]
        lib.lou_translateString.restype = ctypes.c_int
        lib.lou_translateString.argtypes = [
            ctypes.c_char_p,  # tableList
            ctypes.c_void_p,  # inbuf (widechar *)
            ctypes.POINTER(ctypes.c_int),  # inlen
            ctypes.c_void_p,  # outbuf (widechar *)
            ctypes.POINTER(ctypes.c_int),  # outlen
            ctypes.c_void_p,  # typeform
            ctypes.c_char_p,  # spacing
            ctypes.c_int,  # mode
        ]
        lib.lou_dotsToChar.restype = ctypes.c_int
        lib.lou_dotsToChar.argtypes = [
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.lou_setLogLevel(LOG_OFF)
        self.lib = lib
        self.char_size = int(lib.lou_charSize())
        if self.char_size not in (2, 4):
            raise LiblouisError(f"unsupported liblouis widechar size {self.char_size}")
        self.encoding = "utf-16-le" if self.char_size == 2 else "utf-32-le"
        self.version = (lib.lou_version() or b"").decode("ascii", "replace")

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding, "surrogatepass")
        return data

    def decode(self, data: bytes) -> str:
        return data.decode(self.encoding, "surrogatepass")


@lru_cache(maxsize=1)
def _library() -> _Library:
    return _Library()


class LiblouisTranslator:
    """Translate print text into braille cells with a liblouis translation table.

    ``to_unicode`` answers Unicode braille (U+2800 block), ``to_brf`` answers Braille
    ASCII as used in BRF files.  Both come from the same translation, so
    ``to_brf(t)`` and ``to_unicode(t)`` describe the same dots.
    """

    def __init__(self, table: str = KOREAN_GRADE2) -> None:
        self._lib = _library()
        self.table = table
        for display in (UNICODE_DISPLAY, BRF_DISPLAY):
            tables = f"{display},{table}".encode()
            with _lock:
                ok = self._lib.lib.lou_checkTable(tables)
            if not ok:
                raise LiblouisError(f"liblouis cannot compile table {display},{table}")

    @property
    def library_version(self) -> str:
        return self._lib.version

    def to_unicode(self, text: str) -> str:
        """Translate ``text`` into Unicode braille (one character per cell)."""
        return self._translate(f"{UNICODE_DISPLAY},{self.table}", text)

    def to_brf(self, text: str) -> str:
        """Translate ``text`` into Braille ASCII (one character per cell)."""
        return self._translate(f"{BRF_DISPLAY},{self.table}", text)

    def dots_to_brf(self, cells: str) -> str:
        """Show Unicode-braille cells as Braille ASCII with liblouis' BRF display table."""
        return self._dots_to_chars(BRF_DISPLAY, cells)

    def _translate(self, tables: str, text: str) -> str:
        if not text:
            return ""
        if len(text) > MAX_INPUT_CHARS:
            raise LiblouisError(f"text longer than {MAX_INPUT_CHARS} characters")
        if "\x00" in text:
            raise LiblouisError("text contains a NUL character")
        lib = self._lib
        data = lib.encode(text)
        n_in = len(data) // lib.char_size
        # Contractions shrink Korean; numbers and capitals grow. 4x plus slack is ample.
        capacity = n_in * 4 + 32
        inbuf = ctypes.create_string_buffer(data, len(data))
        outbuf = ctypes.create_string_buffer(capacity * lib.char_size)
        inlen = ctypes.c_int(n_in)
        outlen = ctypes.c_int(capacity)
        with _lock:
            ok = lib.lib.lou_translateString(
                tables.encode(),
                inbuf,
                ctypes.byref(inlen),
                outbuf,
                ctypes.byref(outlen),
                None,
                None,
                0,
            )
        if not ok:
            raise LiblouisError(f"liblouis could not translate with {tables}")
        if inlen.value != n_in:
            raise LiblouisError("liblouis output buffer too small")
        return lib.decode(outbuf.raw[: outlen.value * lib.char_size])

    def _dots_to_chars(self, display: str, cells: str) -> str:
        if not cells:
            return ""
        lib = self._lib
        dots = []
        for ch in cells:
            code = ord(ch)
            if not 0x2800 <= code <= 0x28FF:
                raise LiblouisError("not a Unicode braille cell")
            dots.append(chr(_LOU_DOTS | (code - 0x2800)))
        data = lib.encode("".join(dots))
        n = len(data) // lib.char_size
        inbuf = ctypes.create_string_buffer(data, len(data))
        outbuf = ctypes.create_string_buffer(n * lib.char_size)
        tables = f"{display},{self.table}".encode()
        with _lock:
            ok = lib.lib.lou_dotsToChar(tables, inbuf, outbuf, n, 0)
        if not ok:
            raise LiblouisError("liblouis could not map dots to characters")
        return lib.decode(outbuf.raw[: n * lib.char_size])
