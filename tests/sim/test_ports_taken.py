"""The services the tests start that bind a port themselves (PostgreSQL, ``openssl ocsp``):
a port another process took between its pick and the bind is given up for a fresh one."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.x509 import AuthorityInformationAccessOID

from simulators.certificate.authority import CertificateAuthority
from simulators.certificate.ocsp import PortTaken, free_port, start_responder
from tests.pgcluster import start_pg_cluster
from tests.unit.test_certificate_rules import _leaf


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_cluster_whose_port_was_taken_starts_on_a_fresh_one() -> None:
    root = Path(tempfile.mkdtemp(prefix="authd-pg-taken-"))  # the postgres user reaches it
    with taken_port() as taken:
        picks = iter([taken])
        cluster = start_pg_cluster(root, lambda: next(picks, 0) or free_port())
        try:
            assert f":{taken}" not in cluster.url_base
            with psycopg.connect(cluster.url("postgres")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            assert cluster._stop is not None
            cluster._stop()
            shutil.rmtree(root, ignore_errors=True)


def test_an_ocsp_responder_whose_port_was_taken_starts_on_a_fresh_one(tmp_path: Path) -> None:
    with taken_port() as taken:
        ca = CertificateAuthority(tmp_path / "ca", ocsp_url=f"http://127.0.0.1:{taken}/")
        responder = start_responder(ca, taken)
        try:
            assert responder.port != taken and ca.ocsp_url == responder.url
            leaf = _leaf(ca)  # names the port the responder has
            access = leaf.extensions.get_extension_for_class(
                x509.AuthorityInformationAccess).value
            assert [a.access_location.value for a in access
                    if a.access_method == AuthorityInformationAccessOID.OCSP] == [responder.url]
        finally:
            responder.stop()


def test_a_taken_port_that_certificates_name_is_not_given_up(tmp_path: Path) -> None:
    with taken_port() as taken:
        ca = CertificateAuthority(tmp_path / "ca", ocsp_url=f"http://127.0.0.1:{taken}/")
        _leaf(ca)
        with pytest.raises(PortTaken):
            start_responder(ca, taken)
        assert ca.ocsp_url == f"http://127.0.0.1:{taken}/"
