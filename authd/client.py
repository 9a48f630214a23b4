"""Client channels to authd: mTLS with a certificate, or the insecure development mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                           grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed metadata (the development-mode caller) to every call."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        metadata = list(details.metadata or []) + self._metadata
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else \
            _Details(details.method, details.timeout, metadata, details.credentials,
                     getattr(details, "wait_for_ready", None),
                     getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any,
                              request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any,
                               request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any,
                               request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any,
                                request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: float | None, metadata: Any, credentials: Any,
                 wait_for_ready: bool | None, compression: Any) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def dev_channel(address: str, institution: str, role: str, subject: str = "dev") -> grpc.Channel:
    """A plaintext channel whose calls carry the caller as metadata (insecure dev mode only)."""
    channel = grpc.insecure_channel(address)
    md = [(METADATA_INSTITUTION, institution), (METADATA_ROLE, role), (METADATA_SUBJECT, subject)]
    return grpc.intercept_channel(channel, _MetadataInterceptor(md))


def tls_channel(address: str, ca: Path, cert: Path, key: Path,
                server_name: str | None = None) -> grpc.Channel:
    """An mTLS channel: the client certificate says who is calling."""
    creds = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(),
                                         private_key=key.read_bytes(),
                                         certificate_chain=cert.read_bytes())
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(address, creds, options=options)


def identity_channel(address: str, pki_dir: Path, name: str) -> grpc.Channel:
    """An mTLS channel using ``NAME.pem``/``NAME.key`` and ``ca.pem`` from a dev PKI directory."""
    return tls_channel(address, pki_dir / "ca.pem", pki_dir / f"{name}.pem",
                       pki_dir / f"{name}.key")
