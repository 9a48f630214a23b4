"""The configuration reference and samples are generated from the code and stay true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from authd import cli
from authd import config as configmod
from authd.config_check import check
from authd.config_reference import SAMPLES, generated, reference_markdown
from authd.settings import describe


def test_generated_files_are_fresh() -> None:
    stale = [str(p) for p, text in generated().items() if not p.exists() or p.read_text() != text]
    assert not stale, f"run python -m authd.config_reference: {stale}"


def test_reference_names_every_key_with_its_environment_variable() -> None:
    text = reference_markdown()
    for cls in (*configmod.CORE_SECTIONS, *configmod.feature_settings_types().values()):
        assert f"## [{cls.SECTION}]" in text
        for doc in describe(cls):
            assert f"`AUTHD_{cls.SECTION.upper()}__{doc.name.upper()}`" in text


@pytest.mark.parametrize("role", sorted(SAMPLES))
def test_samples_load_as_a_node_of_their_role(role: str) -> None:
    cfg = configmod.load(SAMPLES[role], environ={})
    assert cfg.roles == (role,) and cfg.simulators is False


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    pin = tmp_path / "kek.pin"
    pin.write_text("1234\n")
    os.chmod(pin, 0o644)
    f = tmp_path / "authd.toml"
    f.write_text(f'[server]\ntls_cert = "{tmp_path}/none.pem"\n'
                 f'[kek]\npin_file = "{pin}"\nmodule = "{tmp_path}/none.so"\n'
                 '[store]\nurl = "mysql://db"\n')
    problems = check(str(f), environ={})
    assert any("tls_cert, tls_key and client_ca must be set together" in p for p in problems)
    assert any("none.pem does not exist" in p for p in problems)
    assert any("readable by group or others (mode 644" in p for p in problems)
    assert any("[kek] module" in p and "none.so" in p for p in problems)
    assert any("unsupported scheme 'mysql'" in p for p in problems)
    f.write_text('[otp]\nwriters = -1\nlockout = 2\n[nope]\n')
    assert len(check(str(f), environ={})) == 3


def test_cli_check_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(f'data_dir = "{tmp_path}"\n[kek]\nkind = "file"\n'
                    '[server]\ninsecure = true\n')
    assert cli.main(["config", "check", "--no-env", str(good)]) == 0
    assert "configuration ok" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[otp]\nengine = "fast"\n')
    assert cli.main(["config", "check", "--no-env", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "[otp] engine must be one of 'thread', 'loop'" in captured.out
    assert "1 problem(s)" in captured.err


def test_check_reads_a_branch_nodes_link_files(tmp_path: Path) -> None:
    key = tmp_path / "branch.key"
    key.write_text("key")
    os.chmod(key, 0o644)
    f = tmp_path / "authd.toml"
    f.write_text(f'roles = ["branch"]\n[kek]\nkind = "file"\n[server]\ninsecure = true\n'
                 f'[center]\nurls = ["center:50051"]\ntls_cert = "{tmp_path}/branch.pem"\n'
                 f'tls_key = "{key}"\nca = "{tmp_path}/ca.pem"\n')
    problems = check(str(f), environ={})
    assert any("[center] tls_cert" in p and "does not exist" in p for p in problems)
    assert any("[center] tls_key" in p and "mode 644" in p for p in problems)
    assert any("[center] ca" in p for p in problems)
