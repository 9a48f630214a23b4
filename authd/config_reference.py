"""The configuration reference and the sample files, generated from the settings classes.

``docs/configuration.md`` and ``deploy/authd-<role>.toml`` are written by
``python -m authd.config_reference`` and checked by the tests, so they cannot drift from the
code: every key, its type, default, environment variable and documentation come from the
dataclasses in ``authd/config.py`` and ``authd/<feature>/settings.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from authd import config as configmod
from authd.features import FEATURES
from authd.settings import FieldDoc, describe

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "configuration.md"
SAMPLES = {role: ROOT / "deploy" / f"authd-{role}.toml" for role in ("branch", "center")}


def _toml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return _toml_value(value.hex())
    if isinstance(value, Path):
        return _toml_value(str(value))
    if isinstance(value, frozenset):
        return _toml_value(sorted(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        return _toml_value(dataclasses.asdict(value))  # type: ignore[arg-type]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return _toml_value(str(value))


def _sections() -> list[tuple[str, type, frozenset[str] | None]]:
    """(section, settings class, roles that use it; None: every node)."""
    out: list[tuple[str, type, frozenset[str] | None]] = [
        (cls.SECTION, cls, None) for cls in configmod.CORE_SECTIONS]  # type: ignore[attr-defined]
    types = configmod.feature_settings_types()
    for ref in FEATURES:
        out.append((ref.name, types[ref.name], ref.roles))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(section: str, docs: Iterable[FieldDoc]) -> list[str]:
    rows = []
    for d in docs:
        env = f"AUTHD_{section.upper()}__{d.name.upper()}"
        default = _toml_value(d.default) or "unset"
        rows.append(f"| `{d.name}` | {_cell(d.type)} | `{_cell(default)}` | `{env}` | "
                    f"{_cell(d.doc)} |")
    return rows


def _summary(cls: type) -> str:
    """The first line of the class's own docstring, else of its module's."""
    own = (cls.__doc__ or "").strip()
    if own and not own.startswith(cls.__name__ + "("):  # not dataclass's generated signature
        return own.splitlines()[0].replace("``", "`")
    return (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0].replace("``", "`")


def reference_markdown() -> str:
    defaults = configmod.Config()
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings classes by `python -m authd.config_reference`; the tests",
        "fail when it is stale. authd reads one TOML file (`authd serve --config FILE`); an",
        "environment variable `AUTHD_<SECTION>__<KEY>` overrides `[section] key` (its value is",
        "parsed as a TOML value when it looks like one), and `AUTHD_<KEY>` a top-level key.",
        "Unknown sections and keys are errors. `authd config check FILE` reports every problem",
        "of a file at once. Commented samples: `deploy/authd-branch.toml`,",
        "`deploy/authd-center.toml`.",
        "",
        "## Top level",
        "",
        "| key | type | default | environment | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, (type_text, doc) in configmod.TOP_LEVEL_DOCS.items():
        value = getattr(defaults, name)
        lines.append(f"| `{name}` | {_cell(type_text)} | `{_cell(_toml_value(value))}` | "
                     f"`AUTHD_{name.upper()}` | {_cell(doc)} |")
    for section, cls, roles in _sections():
        lines += ["", f"## [{section}]", ""]
        lines += [_summary(cls), ""]
        if roles is not None:
            lines += [f"Used by nodes with the role(s): {', '.join(sorted(roles))}.", ""]
        docs = describe(cls)
        if not docs:
            lines.append("No settings yet.")
            continue
        lines += ["| key | type | default | environment | meaning |", "|---|---|---|---|---|"]
        lines += _rows(section, docs)
    return "\n".join(lines) + "\n"


# What a deployment of each role sets beyond the defaults (paths follow the systemd units).
_SAMPLE_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "center": {
        "": {"data_dir": "/var/lib/authd", "roles": ["center"], "simulators": False},
        "server": {"listen": "0.0.0.0:50051", "tls_cert": "/etc/authd/tls/server.pem",
                   "tls_key": "/etc/authd/tls/server.key",
                   "client_ca": "/etc/authd/tls/clients-ca.pem",
                   "metrics_listen": "127.0.0.1:9464", "processes": 2},
        "store": {"url": "postgresql://authd@db.internal:5432/authd", "pool_size": 8},
        "kek": {"module": "/usr/lib/vendor/libnetwork-hsm.so", "token_label": "authd-kek",
                "pin_file": "/run/credentials/authd-center.service/kek-pin"},
    },
    "branch": {
        "": {"data_dir": "/var/lib/authd", "roles": ["branch"], "simulators": False},
        "server": {"listen": "127.0.0.1:50051", "tls_cert": "/etc/authd/tls/server.pem",
                   "tls_key": "/etc/authd/tls/server.key",
                   "client_ca": "/etc/authd/tls/tellers-ca.pem"},
        "kek": {"pin_file": "/run/credentials/authd-branch.service/kek-pin"},
        "center": {"urls": ["center-1.bank.internal:50051", "center-2.bank.internal:50051"],
                   "tls_cert": "/etc/authd/tls/branch.pem",
                   "tls_key": "/etc/authd/tls/branch.key",
                   "ca": "/etc/authd/tls/center-ca.pem"},
        "hid_otp": {"backend": "hidapi"},
        "security_card": {"embosser": "socket://embosser.branch.internal:9100",
                          "printer": "lp://cards"},
        "token": {"modules": ["/usr/lib/softhsm/libsofthsm2.so"]},
    },
}


def sample_toml(role: str) -> str:
    """A commented sample configuration for a node of ``role``: every key of every section the
    role uses, set where a deployment must choose and commented out at its default otherwise."""
    chosen = _SAMPLE_VALUES[role]
    defaults = configmod.Config()
    lines = [f"# authd configuration for a {role} node (generated: python -m "
             "authd.config_reference).",
             "# Every key is shown; commented lines hold the default. Reference: "
             "docs/configuration.md", ""]
    for name, (_, doc) in configmod.TOP_LEVEL_DOCS.items():
        lines.append(f"# {doc}")
        if name in chosen[""]:
            lines.append(f"{name} = {_toml_value(chosen[''][name])}")
        else:
            lines.append(f"# {name} = {_toml_value(getattr(defaults, name))}")
    for section, cls, roles in _sections():
        if roles is not None and role not in roles:
            continue
        docs = describe(cls)
        if not docs:
            continue
        set_here = chosen.get(section, {})
        lines += ["", f"[{section}]"]
        for d in docs:
            lines.append(f"# {d.doc}")
            if d.name in set_here:
                lines.append(f"{d.name} = {_toml_value(set_here[d.name])}")
            elif d.default is None:
                lines.append(f"# {d.name} =")
            else:
                lines.append(f"# {d.name} = {_toml_value(d.default)}")
    return "\n".join(lines) + "\n"


def generated() -> dict[Path, str]:
    out = {REFERENCE: reference_markdown()}
    out.update({path: sample_toml(role) for role, path in SAMPLES.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authd.config_reference",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = [p for p, text in generated().items()
             if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python -m authd.config_reference)")
        return 1 if stale else 0
    for path, text in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in generated())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
