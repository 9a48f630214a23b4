from __future__ import annotations

from pathlib import Path

import pytest

from authd import config as configmod
from devices.errors import InvalidArgument


def test_defaults_are_the_embedded_setup():
    cfg = configmod.load(None, environ={})
    assert cfg.server.listen == "127.0.0.1:50051"
    assert cfg.server.insecure is False
    assert cfg.store_url.startswith("sqlite:///") and cfg.store_url.endswith("authd.db")
    assert cfg.otp.lockout_threshold == 10 and cfg.otp.default_period == 60
    assert cfg.kek.kind == "pkcs11"


def test_file_then_environment_override(tmp_path: Path):
    f = tmp_path / "authd.toml"
    f.write_text('data_dir = "/srv/authd"\n[otp]\nlockout_threshold = 7\n'
                 '[hid_otp]\nvendor = 4176\n')
    cfg = configmod.load(f, environ={"AUTHD_OTP__LOCKOUT_THRESHOLD": "12",
                                     "AUTHD_STORE__URL": "postgresql://db/authd",
                                     "AUTHD_HID_OTP__POLL": "0.5", "UNRELATED": "x"})
    assert cfg.data_dir == Path("/srv/authd")
    assert cfg.otp.lockout_threshold == 12
    assert cfg.store_url == "postgresql://db/authd"
    assert cfg.section("hid_otp") == {"vendor": 4176, "poll": 0.5}
    assert cfg.section("absent") == {}


@pytest.mark.parametrize("text,message", [
    ("[otp]\nlockout = 3\n", "unknown setting"),
    ("[server\n", "not valid TOML"),
    ("surprise = 1\n", "unknown top-level"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str):
    f = tmp_path / "authd.toml"
    f.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        configmod.load(f, environ={})


def test_missing_file(tmp_path: Path):
    with pytest.raises(InvalidArgument, match="not found"):
        configmod.load(tmp_path / "nope.toml", environ={})
