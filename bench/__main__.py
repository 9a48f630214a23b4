"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench otp secrets ... [--flags]``
(flags after the names go to every named benchmark).

Each bench/bench_NAME.py module defines ``main(argv: list[str]) -> None`` and prints its
figures side by side with the comparable direct path.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem[len("bench_"):] for p in here.glob("bench_*.py"))


def main() -> int:
    args = sys.argv[1:]
    first_flag = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    names = args[:first_flag] or available()
    flags = args[first_flag:]
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    for name in names:
        print(f"\n=== bench {name} ===", flush=True)
        importlib.import_module(f"bench.bench_{name}").main(flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
