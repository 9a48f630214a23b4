"""``authd serve`` hands the interpreter's lock between its threads at the configured interval."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import Node
from tests.pgcluster import free_port


def _served_switch_interval(tmp_path: Path, env: dict[str, str]) -> float:
    store_url = f"sqlite:///{tmp_path / 'authd.db'}"
    make_config(tmp_path / "cfg", store_url)  # writes the session's KEK PIN file
    port = free_port()
    node = Node(tmp_path / "node", store_url, {
        "AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE),
        "AUTHD_SERVER__METRICS_LISTEN": f"127.0.0.1:{port}", **env})
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                      timeout=10).read().decode()
    finally:
        node.terminate()
    found = re.search(r"^authd_switch_interval_seconds (\S+)$", text, re.MULTILINE)
    assert found is not None, "the daemon reports no switch interval"
    return float(found.group(1))


@pytest.mark.parametrize(("env", "seconds"), [
    ({}, 0.001),  # the default: 1 ms, not CPython's 5 ms
    ({"AUTHD_SERVER__SWITCH_INTERVAL_MS": "0.5"}, 0.0005),
])
def test_the_daemon_switches_threads_at_the_configured_interval(
        tmp_path: Path, env: dict[str, str], seconds: float) -> None:
    assert _served_switch_interval(tmp_path, env) == pytest.approx(seconds)
