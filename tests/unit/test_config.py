from __future__ import annotations

from pathlib import Path

import pytest

from authd import config as configmod
from authd.hid_otp.settings import HidOtpSettings
from authd.otp.settings import OtpSettings
from authd.settings import ConfigError, describe
from authd.token.settings import ModuleSetting, TokenSettings
from devices.errors import BadRequest


def test_defaults_are_the_embedded_setup():
    cfg = configmod.load(None, environ={})
    assert cfg.server.listen == "127.0.0.1:50051"
    assert cfg.server.insecure is False
    assert cfg.store_url.startswith("sqlite:///") and cfg.store_url.endswith("authd.db")
    otp = cfg.settings(OtpSettings)
    assert otp.lockout_threshold == 10 and otp.default_period == 60
    assert cfg.kek.kind == "pkcs11"


def test_file_then_environment_override(tmp_path: Path):
    f = tmp_path / "authd.toml"
    f.write_text('data_dir = "/srv/authd"\n[otp]\nlockout_threshold = 7\n'
                 '[hid_otp]\nserial_prefix = "USB-"\n')
    cfg = configmod.load(f, environ={"AUTHD_OTP__LOCKOUT_THRESHOLD": "12",
                                     "AUTHD_STORE__URL": "postgresql://db/authd",
                                     "AUTHD_HID_OTP__TOUCH_TIMEOUT": "5", "UNRELATED": "x"})
    assert cfg.data_dir == Path("/srv/authd")
    assert cfg.settings(OtpSettings).lockout_threshold == 12
    assert cfg.store_url == "postgresql://db/authd"
    hid = cfg.settings(HidOtpSettings)
    assert hid.serial_prefix == "USB-" and hid.touch_timeout == 5.0


def test_values_are_converted_by_their_declared_type(tmp_path: Path):
    cfg = configmod.from_mapping({"token": {
        "modules": ["/lib/a.so", {"path": "/lib/b.so", "rescan": "poll"}],
        "ignore_labels": ["x", "y"], "poll_interval": 1}})
    token = cfg.settings(TokenSettings)
    assert token.modules == (ModuleSetting("/lib/a.so"), ModuleSetting("/lib/b.so", "poll"))
    assert token.ignore_labels == frozenset({"x", "y"}) and token.poll_interval == 1.0


@pytest.mark.parametrize("text,message", [
    ("[otp]\nlockout = 3\n", r"\[otp\] lockout: unknown setting"),
    ("[server\n", "not valid TOML"),
    ("surprise = 1\n", "surprise: unknown setting"),
    ("[surprise]\nx = 1\n", r"\[surprise\]: unknown section"),
    ("[otp]\nlockout_threshold = \"ten\"\n", "lockout_threshold must be an integer"),
    ("[otp]\nlockout_threshold = true\n", "lockout_threshold must be an integer"),
    ("[otp]\nengine = \"fast\"\n", "engine must be one of 'thread', 'loop'"),
    ("[otp]\nlockout_threshold = 0\n", "lockout_threshold must be 1..1000000"),
    ("[server]\ngrace_seconds = nan\n", "grace_seconds must be a finite number"),
    ("[server]\nfront_queues = 0\n", "front_queues must be 1..64"),
    ("roles = [\"teller\"]\n", "roles must be"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str):
    f = tmp_path / "authd.toml"
    f.write_text(text)
    with pytest.raises(BadRequest, match=message):
        configmod.load(f, environ={})


def test_every_problem_is_reported_at_once(tmp_path: Path):
    f = tmp_path / "authd.toml"
    f.write_text('log_level = "LOUD"\n[otp]\nwriters = -1\nlockout = 3\n'
                 '[kek]\nkind = "usb"\n[smartcard]\nmax_batch = 0\n')
    with pytest.raises(ConfigError) as err:
        configmod.load(f, environ={})
    problems = err.value.problems
    assert len(problems) == 5, problems
    assert any(p.startswith("log_level") for p in problems)
    assert any(p.startswith("[otp] batch_max must be 1..10000 and writers") for p in problems)
    assert any(p.startswith("[otp] lockout: unknown") for p in problems)
    assert any(p.startswith("[kek] kind must be one of") for p in problems)
    assert any(p.startswith("[smartcard] max_apdu_bytes") for p in problems)


def test_missing_file(tmp_path: Path):
    with pytest.raises(BadRequest, match="not found"):
        configmod.load(tmp_path / "nope.toml", environ={})


def test_every_setting_is_documented():
    for cls in (*configmod.CORE_SECTIONS, *configmod.feature_settings_types().values()):
        for doc in describe(cls):
            assert doc.doc, f"[{cls.SECTION}] {doc.name} has no documentation"
