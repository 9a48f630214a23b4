"""What large requests cost the daemon before it checks who sent them: its peak memory.

    PYTHONPATH=. python -m bench limits [--calls 120] [--mib 3.9] [--channels 1]

Starts ``authd serve`` (mTLS, the embedded default) as a child process, reads its peak
resident set (``VmHWM``) once it serves, then sends ``--calls`` concurrent ``WhoAmI`` calls of
``--mib`` MiB each (a valid message: the padding is an unknown field) over ``--channels``
client connections with a client certificate, and reads the peak again. Prints what the calls
were answered and how much the server's peak grew, with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.floods import flood, memory_mib


class ServeProcess:
    """``authd serve`` on the embedded default with mTLS, in a data directory of its own."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        env.update({"AUTHD_LOG_LEVEL": "WARNING", **(extra_env or {})})
        self.log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authd.cli", "serve", "--data-dir", str(data_dir),
             "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE, stderr=self.log,
            text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("authd listening on port "):
            self.stop()
            raise RuntimeError(f"authd did not start; see {self.log.name}")
        self.port = int(line.rsplit(" ", 1)[1])
        self.pki = data_dir / "pki"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench limits", description=__doc__)
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--mib", type=float, default=3.9)
    parser.add_argument("--channels", type=int, default=1)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="authd-bench-limits-"))
    server = ServeProcess(root / "node")
    try:
        time.sleep(1.0)
        before, _ = memory_mib(server.proc.pid)
        load = os.getloadavg()
        answers = flood(f"localhost:{server.port}", server.pki, args.calls,
                        int(args.mib * 1024 * 1024), args.channels)
        after, now = memory_mib(server.proc.pid)
    finally:
        server.stop()
    print(f"{args.calls} concurrent WhoAmI of {args.mib} MiB over {args.channels} "
          f"connection(s): {dict(answers)}")
    print(f"server peak RSS {before:.0f} MiB before, {after:.0f} MiB after "
          f"(+{after - before:.0f} MiB); RSS now {now:.0f} MiB")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
