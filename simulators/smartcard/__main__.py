"""Run a virtual PIV card in a vpcd reader until interrupted.

python -m simulators.smartcard --state card.json [--port 35963]
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from simulators.smartcard.vpcd import DEFAULT_HOST, DEFAULT_PORT, open_slot


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state", type=Path, required=True, help="card state file (created if missing)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="vpcd port (35963 reader 0, 35964 reader 1)"
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open_slot(args.state, args.port, args.host) as slot:
        print(
            f"virtual PIV card {slot.card.state.serial} inserted on {args.host}:{args.port}",
            flush=True,
        )
        stop.wait()


if __name__ == "__main__":
    main()
