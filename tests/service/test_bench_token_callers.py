"""The token benchmark's callers: one that cannot start is counted as failed and the figure
says so, instead of counting 0 signatures and reporting the run as if from every caller."""

from __future__ import annotations

from pathlib import Path

from bench import bench_token


def test_callers_that_cannot_start_are_named_in_the_figures(tmp_path: Path) -> None:
    missing = str(tmp_path / "libmissing-pkcs11.so")  # no such module: each caller fails
    run = bench_token._run(bench_token._pkcs11_worker, (missing, bench_token.EC_ID), 2, 0.2)
    assert run["failed_callers"] == 2 and run["rate"] == 0.0
    rate, spread, _ = bench_token.summary([run])
    assert rate == 0.0 and spread.endswith("FAILED: 2 caller(s) in 1 of 1 run(s)"), spread
