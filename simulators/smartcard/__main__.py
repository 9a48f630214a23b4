"""Run a virtual PIV card in a vpcd reader until interrupted.

python -m simulators.smartcard --state card.json [--port 35963]      # a running pcscd's vpcd
python -m simulators.smartcard --state card.json --own-pcscd DIR     # a pcscd of its own

With --own-pcscd the card goes into reader 0 of a pcscd started for it (socket and reader
configuration in DIR, free vpcd ports); the line it prints names the socket for clients:
PCSCLITE_CSOCK_NAME=DIR/pcscd.comm opensc-tool -l
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from simulators.smartcard.pcscd import PrivatePcscd
from simulators.smartcard.vpcd import DEFAULT_HOST, DEFAULT_PORT, open_slot


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state", type=Path, required=True, help="card state file (created if missing)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="vpcd port of a running pcscd (35963 reader 0, 35964 reader 1 by default)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--own-pcscd", type=Path, metavar="DIR",
                        help="start a pcscd of its own in DIR and use its reader 0")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pcscd = PrivatePcscd(args.own_pcscd) if args.own_pcscd else None
    port = args.port
    if pcscd is not None:
        pcscd.start()
        port = pcscd.port(0)
        print(f"pcscd started: PCSCLITE_CSOCK_NAME={pcscd.socket_path}", flush=True)
    try:
        with open_slot(args.state, port, args.host) as slot:
            print(
                f"virtual PIV card {slot.card.state.serial} inserted on {args.host}:{port}",
                flush=True,
            )
            stop.wait()
    finally:
        if pcscd is not None:
            pcscd.stop()


if __name__ == "__main__":
    main()
