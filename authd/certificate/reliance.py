"""The relying party's checks before a certificate counts: validity period, chain to the
configured CA certificates, and revocation status by OCSP, falling back to the CRL, cached
within the responder's stated validity (nextUpdate), at most ``cache_max_seconds``.

A responder that is down gives the configured answer: refuse (``closed``, the default) or
allow and say so (``open``).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from prometheus_client import Counter

from authd.certificate.settings import CertificateSettings
from authd.metrics import REGISTRY
from devices.certificate import reliance as rules
from devices.certificate.chain import Chain, ChainError, build_chain
from devices.certificate.reliance import Reliance, Verdict
from devices.certificate.revocation import (
    RevocationError,
    RevocationStatus,
    crl_urls,
    judge_crl,
    judge_ocsp,
    ocsp_request,
    ocsp_urls,
)
from devices.errors import BadRequest, Unreachable, WrongState
from drivers.certificate import HttpFailure, fetch_crl, post_ocsp

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

CHECKS = Counter("authd_certificate_checks",
                 "certificate checks before a signature counts, by verdict and source "
                 "(cache, ocsp, crl, none)", ("source", "verdict"), registry=REGISTRY)


def _count(verdict: str, source: str) -> None:
    CHECKS.labels(source=source, verdict=verdict).inc()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load(der: bytes) -> x509.Certificate:
    try:
        if der.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(der)
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise BadRequest("the certificate is not an X.509 certificate (DER or PEM)",
                         field="certificate") from None


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@dataclass
class _Known:
    cert: x509.Certificate
    chain: Chain | None
    chain_error: str
    chain_until: dt.datetime  # re-check the chain after this (a CA certificate expires)
    status: RevocationStatus | None = None
    status_until: dt.datetime | None = None


class RevocationChecker:
    def __init__(self, settings: CertificateSettings, anchors: Sequence[x509.Certificate],
                 clock: Clock = utc_now, *,
                 post: Callable[[str, bytes, float], bytes] = post_ocsp,
                 fetch: Callable[[str, float], bytes] = fetch_crl) -> None:
        self.settings = settings
        self.anchors = list(anchors)
        self.clock = clock
        self._post, self._fetch = post, fetch
        self._known: collections.OrderedDict[bytes, _Known] = collections.OrderedDict()
        self._crls: dict[str, tuple[bytes, dt.datetime]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[bytes, threading.Lock] = {}

    # ------------------------------------------------------------------ public
    def check(self, der: bytes, intermediates: Sequence[x509.Certificate] = ()) -> Reliance:
        """The verdict for the certificate ``der`` now; never raises for the certificate's
        state (that is the verdict), only for a certificate that cannot be parsed."""
        now = self.clock()
        known = self._entry(der, intermediates, now)
        verdict = rules.period(known.cert, now)
        if verdict is not None:
            _count(verdict.verdict.value, "none")
            return verdict
        if known.chain is None:
            _count(Verdict.UNTRUSTED.value, "none")
            return Reliance(Verdict.UNTRUSTED, False,
                            f"the certificate does not chain to a trusted CA ({known.chain_error})")
        if known.status is not None and known.status_until is not None \
                and now < known.status_until:
            _count(rules.by_status(known.status).verdict.value, "cache")
            return rules.by_status(known.status)
        return self._refresh(der, known, now)

    def fresh(self, der: bytes) -> bool:
        known = self._known.get(der)
        if known is None:
            return False
        now = self.clock()
        if known.chain is None or rules.period(known.cert, now) is not None:
            return True  # answered from memory: untrusted, not yet valid or expired
        return known.status_until is not None and now < known.status_until

    def forget(self, der: bytes) -> None:
        """Drop what is cached about one certificate (authd itself changed its status)."""
        with self._lock:
            self._known.pop(der, None)
            self._crls.clear()

    # ----------------------------------------------------------------- details
    def _entry(self, der: bytes, intermediates: Sequence[x509.Certificate],
               now: dt.datetime) -> _Known:
        known = self._known.get(der)
        if known is not None and now < known.chain_until:
            return known
        cert = load(der)
        try:
            chain: Chain | None = build_chain(cert, self.anchors, intermediates, now)
            error = ""
            assert chain is not None
            until = min(c.not_valid_after_utc for c in chain.links[1:])
        except ChainError as exc:
            chain, error, until = None, str(exc), now + dt.timedelta(minutes=1)
        fresh = _Known(cert, chain, error, until)
        if known is not None and known.chain is not None and chain is not None:
            fresh.status, fresh.status_until = known.status, known.status_until
        with self._lock:
            self._known[der] = fresh
            self._known.move_to_end(der)
            while len(self._known) > self.settings.cache_entries:
                self._known.popitem(last=False)
        return fresh

    def _refresh(self, der: bytes, known: _Known, now: dt.datetime) -> Reliance:
        with self._lock:
            gate = self._fetching.setdefault(der, threading.Lock())
        with gate:  # one fetch per certificate at a time; the others use its answer
            if known.status_until is not None and self.clock() < known.status_until \
                    and known.status is not None:
                _count(rules.by_status(known.status).verdict.value, "cache")
                return rules.by_status(known.status)
            status, why = self._ask(known, now)
            if status is None:
                reliance = rules.unavailable(why, self.settings.responder_down == "open")
                _count(reliance.verdict.value, "none")
                log.warning("certificate status unavailable",
                            extra={"fields": {"serial": format(known.cert.serial_number, "x"),
                                              "why": why}})
                return reliance
            cap = now + dt.timedelta(seconds=self.settings.cache_max_seconds)
            known.status, known.status_until = status, min(status.next_update, cap)
            reliance = rules.by_status(status)
            _count(reliance.verdict.value, status.source)
            return reliance

    def _ask(self, known: _Known, now: dt.datetime) -> tuple[RevocationStatus | None, str]:
        assert known.chain is not None
        cert, issuer = known.cert, known.chain.issuer
        reasons = []
        for url in ocsp_urls(cert) or ([self.settings.ocsp_url] if self.settings.ocsp_url
                                       else []):
            request, nonce = ocsp_request(cert, issuer)
            try:
                answer = self._post(url, request, self.settings.ocsp_timeout)
                return judge_ocsp(answer, cert, issuer, nonce, self.clock()), ""
            except (HttpFailure, RevocationError) as exc:
                reasons.append(f"OCSP: {exc}")
        for url in crl_urls(cert) or ([self.settings.crl_url] if self.settings.crl_url else []):
            try:
                return judge_crl(self._crl(url, now), cert, issuer, self.clock()), ""
            except (HttpFailure, RevocationError) as exc:
                with self._lock:
                    self._crls.pop(url, None)
                reasons.append(f"CRL: {exc}")
        return None, "; ".join(reasons) or "the certificate names no OCSP responder nor CRL"

    def _crl(self, url: str, now: dt.datetime) -> bytes:
        cached = self._crls.get(url)
        if cached is not None and now < cached[1]:
            return cached[0]
        data = self._fetch(url, self.settings.crl_timeout)
        try:
            crl = (x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----")
                   else x509.load_pem_x509_crl(data))
            until = crl.next_update_utc or now
        except ValueError:
            raise RevocationError("the CRL is not a CRL") from None
        cap = now + dt.timedelta(seconds=self.settings.cache_max_seconds)
        with self._lock:
            self._crls[url] = (data, min(until, cap))
        return data


def enforce(reliance: Reliance) -> None:
    """Raise for a verdict that blocks a signature; the message says why and what to do."""
    if reliance.allowed:
        return
    if reliance.verdict is Verdict.STATUS_UNAVAILABLE:
        raise Unreachable(reliance.message, reason=reliance.verdict.reason)
    raise WrongState(reliance.message, reason=reliance.verdict.reason)
