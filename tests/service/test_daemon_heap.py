"""``authd serve`` moves what its start built out of the garbage collector's scans."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import Node


def test_a_serving_daemon_has_frozen_its_start_up_objects(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'authd.db'}"
    make_config(tmp_path / "cfg", store_url)  # writes the session's KEK PIN file
    node = Node(tmp_path / "node", store_url, {
        "AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE), "AUTHD_LOG_LEVEL": "INFO",
        "AUTHD_SERVER__METRICS_LISTEN": "127.0.0.1:0"})
    try:
        metrics = node.serving_fields()["metrics"]
        text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    finally:
        node.terminate()
    frozen = re.search(r"^authd_gc_frozen_objects (\S+)$", text, re.MULTILINE)
    assert frozen is not None, "the daemon reports no frozen objects"
    # the modules, descriptors and features of the start: tens of thousands of objects
    assert float(frozen.group(1)) > 10_000
