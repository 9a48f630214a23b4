"""Plain HTTP for revocation data: an OCSP request POSTed (RFC 6960 A.1), a CRL fetched.

Bounded in time and size; a failure says what failed (refused, timed out, bad status) without
echoing the body. Only ``http://`` and ``https://`` URLs are followed; redirects are not
(RFC 5019 responders answer directly).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from drivers.errors import DeviceIOError, DeviceTimeout

MAX_OCSP = 64 * 1024
MAX_CRL = 16 * 1024 * 1024


class HttpFailure(DeviceIOError):
    """The server could not be reached or answered with something unusable."""


class HttpRefused(HttpFailure):
    """The server answered with an HTTP error status (``status``)."""

    def __init__(self, message: str, status: int, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class HttpTimeout(HttpFailure, DeviceTimeout):
    """The server did not answer within the timeout."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpFailure(f"not an http(s) URL: {url[:100]!r}")
    return url


def request(url: str, body: bytes | None, content_type: str, accept: str, timeout: float,
            limit: int) -> bytes:
    req = urllib.request.Request(_check_url(url), data=body, method="POST" if body else "GET")
    if body is not None:
        req.add_header("Content-Type", content_type)
    req.add_header("Accept", accept)
    host = urlsplit(url).netloc
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            data: bytes = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        payload = exc.read(MAX_OCSP) if exc.fp is not None else b""
        raise HttpRefused(f"{host} answered HTTP {exc.code}", exc.code, payload) from None
    except TimeoutError:
        raise HttpTimeout(f"{host} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise HttpTimeout(f"{host} did not answer within {timeout:g} s") from None
        raise HttpFailure(f"{host} is unreachable ({_why(exc.reason)})") from None
    except OSError as exc:
        raise HttpFailure(f"{host} is unreachable ({_why(exc)})") from None
    if len(data) > limit:
        raise HttpFailure(f"{host} answered more than {limit} bytes")
    return data


def _why(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return type(reason).__name__ if not isinstance(reason, str) else reason


def post_ocsp(url: str, der_request: bytes, timeout: float) -> bytes:
    return request(url, der_request, "application/ocsp-request", "application/ocsp-response",
                   timeout, MAX_OCSP)


def fetch_crl(url: str, timeout: float) -> bytes:
    return request(url, None, "", "application/pkix-crl", timeout, MAX_CRL)
