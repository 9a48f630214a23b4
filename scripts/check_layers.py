#!/usr/bin/env python3
"""Imports go down only: drivers/ alone imports hardware libraries; devices/ imports no gRPC,
no storage and no driver libraries; nothing below authd/ imports authd."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = {"smartcard", "pkcs11", "hid", "louis"}
RULES: dict[str, set[str]] = {
    "devices": HARDWARE | {"ctypes", "grpc", "grpc_health", "grpc_reflection", "authd",
                           "psycopg", "sqlite3", "simulators"},
    "drivers": {"grpc", "authd", "devices", "simulators", "psycopg", "sqlite3"},
    "simulators": HARDWARE | {"grpc", "authd", "psycopg", "sqlite3"},
    "authd": HARDWARE,
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def main() -> int:
    bad = []
    for layer, forbidden in RULES.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            if layer == "authd" and "v1" in path.relative_to(ROOT / layer).parts[:1]:
                continue
            hit = imports(path) & forbidden
            if hit:
                bad.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(hit))}")
    for line in bad:
        print("layer violation:", line)
    if not bad:
        print("layers ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
