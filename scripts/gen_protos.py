#!/usr/bin/env python3
"""Generate Python code for protos/authd/v1/*.proto into authd/v1/ (checked in).

    python scripts/gen_protos.py          # regenerate
    python scripts/gen_protos.py --check  # exit 1 if the checked-in code is stale
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "authd" / "v1"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _common_protos() -> Path:
    """Where googleapis-common-protos keeps google/rpc/*.proto (imported by our protos)."""
    import google.rpc

    return Path(next(iter(google.rpc.__path__))).parent.parent


def generate(out_root: Path) -> Path:
    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "authd" / "v1").glob("*.proto"))
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{_common_protos()}",
           f"--python_out={out_root}", f"--pyi_out={out_root}",
           f"--grpc_python_out={out_root}", *files]
    subprocess.run(cmd, check=True, cwd=PROTOS)
    target = out_root / "authd" / "v1"
    (target / "__init__.py").write_text('"""Generated gRPC code for package authd.v1."""\n')
    return target


def generated_names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.endswith(SUFFIXES)} | {"__init__.py"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            names = generated_names(fresh)
            have = generated_names(OUT) if OUT.exists() else set()
            stale = sorted(n for n in names | have
                           if n not in names or n not in have
                           or not filecmp.cmp(fresh / n, OUT / n, shallow=False))
            if stale:
                print("generated code is stale; run python scripts/gen_protos.py:", *stale)
                return 1
            print(f"generated code is up to date ({len(names)} files)")
            return 0
        OUT.mkdir(parents=True, exist_ok=True)
        for old in OUT.iterdir():
            if old.name.endswith(SUFFIXES):
                old.unlink()
        for name in generated_names(fresh):
            shutil.copyfile(fresh / name, OUT / name)
    print(f"generated {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
