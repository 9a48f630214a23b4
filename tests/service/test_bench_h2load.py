"""The native load generator's accounting: gRPC errors are failures, never successes.

h2load counts every HTTP 200 as a success, also one whose trailer carries a grpc-status other
than 0; the benchmarks must not.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from authd.v1 import otp_pb2
from bench import h2load
from bench.common import scrape

VERIFY = "/authd.v1.OtpService/Verify"


def test_empty_server_answers_count_and_errors_do_not() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bench.empty_server"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[-1])
        jobs = [(h2load.frame(b""), ())]
        ok = h2load.run_empty(f"http://127.0.0.1:{port}/bench.Empty/Call", jobs,
                              requests_each=40, streams=4)
        assert (ok.calls, ok.answered, ok.failed) == (40, 40, 0)
        missing = h2load.run_empty(f"http://127.0.0.1:{port}/bench.Empty/Missing", jobs,
                                   requests_each=40, streams=4)
        assert missing.http_ok == 40  # h2load's own count: UNIMPLEMENTED looks like success
        assert (missing.answered, missing.failed) == (0, 40)
    finally:
        proc.terminate()
        proc.wait(30)


def test_authd_errors_are_counted_as_failures(server: Callable[..., Any]) -> None:
    srv = server(server={"metrics_listen": "127.0.0.1:0"})
    port = srv._bg.running.metrics.port

    def ok_calls() -> int:
        return int(scrape(port, "authd_rpcs_total", method=VERIFY, code="OK"))

    body = h2load.frame(otp_pb2.VerifyRequest(serial="NO-SUCH-1", code="12x456")
                        .SerializeToString())
    jobs = [(body, h2load.caller_headers("bank-a", "backend", "bench"))]
    run = h2load.run_counted(f"http://{srv.address}{VERIFY}", jobs, ok_calls, requests_each=30,
                             streams=3)
    assert run.http_ok == 30 and run.answered == 0 and run.failed == 30
    unauthenticated = h2load.run_counted(f"http://{srv.address}{VERIFY}", [(body, ())],
                                         ok_calls, requests_each=10, streams=2)
    assert unauthenticated.failed == 10
