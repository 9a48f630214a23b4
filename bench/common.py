"""Helpers shared by the benchmarks: percentiles, CPU time, tables, a private SoftHSM2."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from simulators.token.softhsm import SoftHsmEnvironment


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (server workers)."""
    total = proc_cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(tree_cpu_seconds(int(child)) for child in children)
    return total


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                  strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    return str(value)


def private_softhsm() -> SoftHsmEnvironment:
    """A SoftHSM2 environment of the benchmark's own, active for this process and children."""
    env = SoftHsmEnvironment(Path(tempfile.mkdtemp(prefix="authd-bench-hsm-")))
    env.activate()
    return env


def load1() -> float:
    """The machine's 1-minute load average (printed beside every figure)."""
    return os.getloadavg()[0]


def median_and_spread(values: Sequence[float]) -> tuple[float, str]:
    """The median of repeated runs and their range as text ("1,234–1,456")."""
    if not values:
        return float("nan"), "-"
    ordered = sorted(values)
    mid = ordered[len(ordered) // 2]
    if len(ordered) == 1:
        return mid, "-"
    return mid, f"{_fmt(ordered[0])}–{_fmt(ordered[-1])}"


def scrape(port: int, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples whose labels include ``labels``
    (authd's ``GET /metrics``)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
