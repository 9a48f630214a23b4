"""Secrets on disk: private file modes, the KEK token's PIN from outside the data directory,
and a lost key-encryption key that is never replaced by a new one."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path

import pytest

from authd import config as configmod
from authd.secrets import open_secret_box
from authd.settings import ConfigError
from authd.storage import migrate, open_database
from devices.errors import BadRequest, Unreachable
from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import Node, serve_fails, startup_error


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def own_node(data_dir: Path, **env: str | None) -> Node:
    """``authd serve`` on the embedded default of a fresh install: SQLite, a SoftHSM2 token of
    its own in the data directory (not the test session's), mTLS with a development PKI."""
    return Node(data_dir, f"sqlite:///{data_dir / 'authd.db'}", {"SOFTHSM2_CONF": None, **env},
                insecure=False)


def test_a_fresh_data_directory_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = os.umask(0o022)  # an ordinary umask: the daemon must not depend on the caller's
    try:
        node = own_node(data)
    finally:
        os.umask(old)
    try:
        assert mode(data) == 0o700
        for name in ("authd.db", "authd.db-wal", "authd.db-shm", "kek.pin", "pki/server.key",
                     "pki/ca.key", "pki/bank-a-teller.key"):
            assert mode(data / name) == 0o600, name
        assert mode(data / "softhsm") == 0o700
        tokens = [p for p in (data / "softhsm" / "tokens").rglob("*") if p.is_file()]
        assert tokens and all(mode(p) & 0o077 == 0 for p in tokens)
    finally:
        assert node.terminate() == 0


def test_store_and_key_file_are_created_private_in_process(server, tmp_path: Path) -> None:
    """The modes come from the code, not from the umask of ``authd serve``."""
    old = os.umask(0o022)
    try:
        srv = server(kek={"kind": "file"})
    finally:
        os.umask(old)
    data = srv.config.data_dir
    assert mode(data) == 0o700
    for name in ("authd.db", "authd.db-wal", "authd.db-shm", "kek.key"):
        assert mode(data / name) == 0o600, name


# --------------------------------------------------------------------------- the PIN


def _box(tmp_path: Path, **kek: str):  # type: ignore[no-untyped-def]
    cfg = make_config(tmp_path / "data", f"sqlite:///{tmp_path / 'authd.db'}",
                      kek={"pin_file": "", **kek})
    db = open_database(cfg.store_url)
    migrate(db)
    try:
        return open_secret_box(cfg, db)
    finally:
        db.close()


def _pin_copy(tmp_path: Path, file_mode: int, owner: str | None = None) -> Path:
    path = tmp_path / "outside" / "kek.pin"
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(KEK_PIN_FILE, path)
    os.chmod(path, file_mode)
    if owner is not None:
        os.chown(path, pwd.getpwnam(owner).pw_uid, -1)
    return path


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660])
def test_a_pin_file_others_may_read_is_refused(tmp_path: Path, file_mode: int) -> None:
    make_config(tmp_path / "cfg")  # the session's PIN file exists
    path = _pin_copy(tmp_path, file_mode)
    with pytest.raises(BadRequest, match=r"kek.pin is open to .*make it 0600"):
        _box(tmp_path, pin_file=str(path))


def test_a_pin_file_of_another_user_may_be_group_readable(tmp_path: Path) -> None:
    make_config(tmp_path / "cfg")
    _box(tmp_path, pin_file=str(_pin_copy(tmp_path, 0o640, owner="nobody"))).close()
    with pytest.raises(BadRequest, match="open to others"):
        _box(tmp_path, pin_file=str(_pin_copy(tmp_path, 0o644, owner="nobody")))


def test_pin_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_config(tmp_path / "cfg")
    monkeypatch.setenv("AUTHD_TEST_KEK_PIN", KEK_PIN_FILE.read_text().strip())
    box = _box(tmp_path, pin_env="AUTHD_TEST_KEK_PIN")
    assert box.open(box.seal(b"seed", b"aad"), b"aad") == b"seed"
    box.close()
    monkeypatch.delenv("AUTHD_TEST_KEK_PIN")
    with pytest.raises(Unreachable, match="AUTHD_TEST_KEK_PIN is not set"):
        _box(tmp_path, pin_env="AUTHD_TEST_KEK_PIN")


def test_pin_from_a_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_config(tmp_path / "cfg")
    creds = tmp_path / "credentials"  # what systemd's LoadCredential= makes: 0500 / 0400
    creds.mkdir(mode=0o500)
    (creds / "authd-kek-pin").write_bytes(KEK_PIN_FILE.read_bytes())
    os.chmod(creds / "authd-kek-pin", 0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    _box(tmp_path, pin_credential="authd-kek-pin").close()
    with pytest.raises(Unreachable, match=r"credential file .*missing"):
        _box(tmp_path, pin_credential="other")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(Unreachable, match="CREDENTIALS_DIRECTORY is not set"):
        _box(tmp_path, pin_credential="authd-kek-pin")


@pytest.mark.parametrize("kek", [{"pin_file": "/x", "pin_env": "X"},
                                 {"pin_credential": "../secret"}, {"pin_env": "A B"}])
def test_pin_source_settings_are_checked(kek: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        configmod.load(None, environ={}, overrides={"kek": kek})


def test_a_copy_of_the_data_directory_opens_nothing_without_the_pin(tmp_path: Path) -> None:
    """With the PIN outside the data directory, a copy of the directory (store, token files,
    certificates) does not start a daemon, and no PIN file is in it."""
    pin = os.urandom(16).hex()
    data = tmp_path / "data"
    node = own_node(data, AUTHD_KEK__PIN_ENV="AUTHD_TEST_PIN", AUTHD_TEST_PIN=pin)
    assert node.terminate() == 0
    assert not (data / "kek.pin").exists()
    assert pin.encode() not in b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    # The copy, where the directory was (as on another machine): the original is gone.
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    shutil.rmtree(data)
    copy.rename(data)
    copy = data
    line = startup_error(serve_fails(copy, env={"SOFTHSM2_CONF": None}))
    assert "PIN file for the key-encryption-key token" in line and "missing" in line
    line = startup_error(serve_fails(copy, env={
        "SOFTHSM2_CONF": None, "AUTHD_KEK__PIN_ENV": "AUTHD_TEST_PIN",
        "AUTHD_TEST_PIN": "0" * 32}))
    assert "wrong PIN" in line
    with_pin = own_node(copy, AUTHD_KEK__PIN_ENV="AUTHD_TEST_PIN", AUTHD_TEST_PIN=pin)
    assert with_pin.terminate() == 0


# --------------------------------------------------------------------------- a lost KEK


def test_a_lost_token_is_not_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert own_node(data).terminate() == 0
    tokens = data / "softhsm" / "tokens"
    saved = tmp_path / "saved-tokens"
    shutil.move(tokens, saved)
    tokens.mkdir()
    line = startup_error(serve_fails(data, env={"SOFTHSM2_CONF": None}))
    assert "the key-encryption-key token 'authd-kek' is missing" in line
    assert "restore it" in line
    assert list(tokens.iterdir()) == []  # no new token was made
    shutil.rmtree(tokens)
    shutil.move(saved, tokens)  # restored: the daemon starts and opens its data key
    assert own_node(data).terminate() == 0


def test_a_lost_key_file_is_not_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"AUTHD_KEK__KIND": "file"}
    assert own_node(data, **env).terminate() == 0
    key = data / "kek.key"
    saved = key.read_bytes()
    key.unlink()
    line = startup_error(serve_fails(data, env=env))
    assert "kek.key is missing" in line and "restore it" in line
    assert not key.exists()
    key.write_bytes(saved)
    os.chmod(key, 0o600)
    assert own_node(data, **env).terminate() == 0
