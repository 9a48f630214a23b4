"""Every way ``authd serve`` cannot start ends the same: one line on stderr that says why,
``authd: ...``, no traceback, exit status 2."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from authd import pki
from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import serve_fails, startup_error

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def _own(**env: str | None) -> dict[str, str | None]:
    """The embedded default of a fresh install (a SoftHSM2 token in the data directory)."""
    return {"SOFTHSM2_CONF": None, **env}


def test_a_damaged_store_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "authd.db").write_bytes(b"this is not a database, " * 400)
    line = startup_error(serve_fails(data, env=_own()))
    assert "not a SQLite database" in line and str(data / "authd.db") in line


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = startup_error(serve_fails(tmp_path / "data", "--listen", f"127.0.0.1:{port}",
                                         env=_own()))
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line


def test_a_missing_tls_key(tmp_path: Path) -> None:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    (pki_dir / "server.key").unlink()
    line = startup_error(serve_fails(tmp_path / "data", insecure=False, env=_own(
        AUTHD_SERVER__TLS_CERT=str(pki_dir / "server.pem"),
        AUTHD_SERVER__TLS_KEY=str(pki_dir / "server.key"),
        AUTHD_SERVER__CLIENT_CA=str(pki_dir / "ca.pem"))))
    assert f"server.tls_key {pki_dir / 'server.key'} is missing" in line


def test_a_tls_certificate_that_is_not_one(tmp_path: Path) -> None:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    (pki_dir / "server.pem").write_text("not a certificate\n")
    line = startup_error(serve_fails(tmp_path / "data", insecure=False, env=_own(
        AUTHD_SERVER__TLS_CERT=str(pki_dir / "server.pem"),
        AUTHD_SERVER__TLS_KEY=str(pki_dir / "server.key"),
        AUTHD_SERVER__CLIENT_CA=str(pki_dir / "ca.pem"))))
    assert "server.tls_cert" in line and "is not a PEM certificate" in line


def test_configuration_errors_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "authd.toml"
    config.write_text("[server]\ngrace_seconds = \"soon\"\nmax_workers = 0\nbogus = 1\n[nope]\n"
                      "[store]\npool_size = 0\n")
    line = startup_error(serve_fails(tmp_path / "data", "--config", str(config), env=_own()))
    assert line.startswith("authd: configuration: ")
    for words in ("grace_seconds must be a number", "max_workers must be 1..1024", "bogus",
                  "[nope]: unknown section", "pool_size must be 1..1024"):
        assert words in line
    line = startup_error(serve_fails(tmp_path / "data", "--config", str(tmp_path / "none"),
                                     env=_own()))
    assert "config file not found" in line
    config.write_text("[server\n")
    assert "not valid TOML" in startup_error(serve_fails(tmp_path / "data", "--config",
                                                         str(config), env=_own()))


def test_a_missing_kek_token(tmp_path: Path) -> None:
    """A token module other than the embedded default: its token is not created, and a
    missing one is named."""
    make_config(tmp_path / "cfg")  # the session's PIN file
    module = tmp_path / "vendor-pkcs11.so"
    module.symlink_to(SOFTHSM)  # the same library under another name: not the embedded one
    line = startup_error(serve_fails(tmp_path / "data", env={
        "AUTHD_KEK__MODULE": str(module), "AUTHD_KEK__TOKEN_LABEL": "no-such-token",
        "AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE)}))
    assert "no PKCS#11 token labelled 'no-such-token'" in line
    line = startup_error(serve_fails(tmp_path / "data", env={
        "AUTHD_KEK__MODULE": str(tmp_path / "missing.so"),
        "AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE)}))
    assert "cannot load PKCS#11 module" in line


@pytest.mark.parametrize("problem", ["open to others", "a directory", "empty"])
def test_an_unreadable_pin_file(tmp_path: Path, problem: str) -> None:
    pin = tmp_path / "kek.pin"
    if problem == "a directory":
        pin.mkdir()
    else:
        pin.write_text("" if problem == "empty" else "1234567890\n")
        os.chmod(pin, 0o644 if problem == "open to others" else 0o600)
    line = startup_error(serve_fails(tmp_path / "data",
                                     env=_own(AUTHD_KEK__PIN_FILE=str(pin))))
    expected = {"open to others": "is open to", "a directory": "is not a regular file",
                "empty": "is empty"}[problem]
    assert str(pin) in line and expected in line
    assert "1234567890" not in line
