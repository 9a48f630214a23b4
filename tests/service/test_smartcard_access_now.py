"""CardAccess.submit with ``now_if_faster_than`` (the native front end's call link): the work
runs on the caller's own thread only when the reader is idle and its calls have been fast, in
every other case on the reader's thread after the work queued before it; the two never use the
card connection at the same time. Real pcscd, vpcd and a virtual card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from authd.smartcard.access import CardAccess
from drivers.pcsc.connection import PcscConnection
from simulators.smartcard import VirtualCardSlot
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    running_pcscd,
    wait_card,
)

CHUID = bytes.fromhex("00cb3fff055c035fc10200")
SELECT = bytes.fromhex("00a404000ba00000030800001000010000")


class _Answers:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = 0

    def __call__(self, result: Any, error: BaseException | None) -> None:
        self.result, self.error, self.thread = result, error, threading.get_ident()
        self.done.set()

    def wait(self) -> Any:
        assert self.done.wait(30)
        if self.error is not None:
            raise self.error
        return self.result


def _sw(connection: PcscConnection) -> int:
    connection.send_and_receive(SELECT)
    return connection.send_and_receive(CHUID)[1]


def test_an_idle_fast_reader_runs_the_work_on_the_callers_thread(card: VirtualCardSlot
                                                                 ) -> None:
    wait_card(READERS[0], True)
    access = CardAccess(idle_seconds=5)
    try:
        first = _Answers()  # unmeasured: the reader's thread runs it and measures it
        access.submit(READERS[0], _sw, first, now_if_faster_than=10.0)
        assert first.wait() == 0x9000
        assert first.thread != threading.get_ident()
        here = _Answers()
        access.submit(READERS[0], _sw, here, now_if_faster_than=10.0, units=2)
        assert here.done.is_set()  # answered before submit returned
        assert here.wait() == 0x9000 and here.thread == threading.get_ident()
        many = _Answers()  # 10,000 APDUs at the measured time each: too long to run here
        access.submit(READERS[0], _sw, many, now_if_faster_than=1.0, units=10_000)
        assert many.wait() == 0x9000 and many.thread != threading.get_ident()
        slow_limit = _Answers()  # calls take longer than this limit: the reader's thread
        access.submit(READERS[0], _sw, slow_limit, now_if_faster_than=1e-9)
        assert slow_limit.wait() == 0x9000 and slow_limit.thread != threading.get_ident()
        never = _Answers()
        access.submit(READERS[0], _sw, never)
        assert never.wait() == 0x9000 and never.thread != threading.get_ident()
    finally:
        access.close()


def test_work_queued_or_running_goes_first_and_no_two_use_the_card_at_once(
        card: VirtualCardSlot) -> None:
    wait_card(READERS[0], True)
    access = CardAccess(idle_seconds=5)
    in_use = threading.Lock()
    overlaps: list[str] = []
    try:
        measured = _Answers()
        access.submit(READERS[0], _sw, measured)
        measured.wait()

        release = threading.Event()

        def held(connection: PcscConnection) -> int:
            release.wait(30)
            return _sw(connection)

        blocker = _Answers()
        access.submit(READERS[0], held, blocker)  # running on the reader's thread
        behind = _Answers()
        access.submit(READERS[0], _sw, behind,
                      now_if_faster_than=10.0)
        assert not behind.done.is_set()  # the reader is busy: queued, not run here
        release.set()
        assert blocker.wait() == 0x9000 and behind.wait() == 0x9000
        assert behind.thread != threading.get_ident()

        def exclusive(i: int) -> Any:
            def work(connection: PcscConnection) -> int:
                if not in_use.acquire(blocking=False):
                    overlaps.append(f"call {i}")
                    return _sw(connection)
                try:
                    return _sw(connection)
                finally:
                    in_use.release()

            answers = _Answers()
            access.submit(READERS[0], work, answers, now_if_faster_than=10.0 if i % 2 else 0.0)
            return answers.wait()

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(exclusive, range(120))) == [0x9000] * 120
        assert overlaps == []
    finally:
        access.close()


def test_an_idle_connection_is_still_released_after_calls_run_on_callers_threads(
        card: VirtualCardSlot) -> None:
    """Calls answered on callers' threads keep the connection in use; once idle for
    idle_seconds it is released (another application can then take the card exclusively),
    also when a caller's thread opened it after the reader's thread had released it."""
    import time

    def exclusively() -> None:
        exclusive: PcscConnection | None = None
        deadline = time.monotonic() + 20
        while exclusive is None:
            try:
                exclusive = PcscConnection(READERS[0])
            except Exception:
                assert time.monotonic() < deadline, "the idle connection was never released"
                time.sleep(0.1)
        assert _sw(exclusive) == 0x9000
        exclusive.close(reset=True)

    def here() -> None:
        answers = _Answers()
        access.submit(READERS[0], _sw, answers, now_if_faster_than=10.0)
        assert answers.wait() == 0x9000 and answers.thread == threading.get_ident()

    wait_card(READERS[0], True)
    access = CardAccess(idle_seconds=0.3)
    try:
        first = _Answers()
        access.submit(READERS[0], _sw, first)
        first.wait()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # busy past idle_seconds, all on this thread
            here()
        exclusively()  # released by the reader's thread
        here()  # opens the connection again, on this thread
        exclusively()
    finally:
        access.close()
