"""The PC/SC driver and the PIV session end to end: pyscard -> pcscd -> vpcd -> virtual card."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import logging
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devices.smartcard.errors import InvalidPinError, PinBlockedError
from devices.smartcard.piv import KeyType, PivSession, Slot, verify_signature
from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.context import list_readers
from drivers.pcsc.errors import CardAbsent, PcscServiceUnavailable, ReaderBusy
from drivers.pcsc.events import EventKind, ReaderEvent
from drivers.pcsc.monitor import ReaderMonitor, wait_for
from simulators.smartcard import (
    PcscdError,
    PrivatePcscd,
    ReaderOccupied,
    VirtualCardSlot,
    open_slot,
)
from simulators.smartcard.issuer import CardIssuer
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    PCSCD,
    READERS,
    CardFactory,
    Pcscd,
    card,
    card_factory,
    pcscd,
    running_pcscd,
    wait_card,
)

READER0, READER1 = READERS


def test_list_readers(running_pcscd: Pcscd) -> None:
    assert list_readers() == list(READERS)


def test_piv_flow_over_pcsc(card: VirtualCardSlot) -> None:
    with PcscConnection(READER0) as connection:
        assert connection.atr == card.card.atr
        piv = PivSession(connection)
        assert piv.read_chuid().guid.endswith(bytes.fromhex(card.card.state.serial))
        piv.authenticate()
        public_key = piv.generate_key(Slot.SIGNATURE, KeyType.RSA2048)
        certificate = CardIssuer().issue(public_key, "Kim Cheolsu")
        piv.put_certificate(Slot.SIGNATURE, certificate)  # > 255 bytes: command chaining
        assert piv.get_certificate(Slot.SIGNATURE) == certificate  # 61xx response chaining
        with pytest.raises(InvalidPinError) as info:
            piv.verify_pin("999999")
        assert info.value.attempts_remaining == 2
        piv.verify_pin("123456")
        signature = piv.sign(Slot.SIGNATURE, KeyType.RSA2048, b"login challenge")
        assert verify_signature(public_key, signature, b"login challenge")


def test_blocked_pin_is_reported(card: VirtualCardSlot) -> None:
    with PcscConnection(READER0) as connection:
        piv = PivSession(connection)
        for _ in range(3):
            with pytest.raises(InvalidPinError):
                piv.verify_pin("000000")
        with pytest.raises(PinBlockedError):
            piv.verify_pin("123456")
        assert piv.pin_status().blocked


def test_exclusive_connection(card: VirtualCardSlot) -> None:
    with PcscConnection(READER0), pytest.raises(ReaderBusy):
        PcscConnection(READER0)
    with PcscConnection(READER0) as again:
        assert (
            again.send_and_receive(bytes.fromhex("00a404000ba00000030800001000010000"))[1] == 0x9000
        )


def test_no_card_and_unknown_reader(running_pcscd: Pcscd) -> None:
    with pytest.raises(CardAbsent):
        PcscConnection(READER1)
    with pytest.raises(Exception, match="reader"):
        PcscConnection("No Such Reader 00 00")


def test_card_pulled_mid_operation(card: VirtualCardSlot) -> None:
    with PcscConnection(READER0) as connection:
        piv = PivSession(connection)
        piv.authenticate()

        def pull(command: object) -> None:
            card.card.on_command = None
            card.remove()  # the socket closes before the card answers
            raise ConnectionError("pulled")

        card.card.on_command = pull
        with pytest.raises(CardAbsent, match="removed"):
            piv.generate_key(Slot.AUTHENTICATION, KeyType.ECCP256)
        with pytest.raises(CardAbsent):
            connection.send_and_receive(b"\x00\xa4\x04\x00")
    wait_card(READER0, False)
    card.insert()
    wait_card(READER0, True)
    with PcscConnection(READER0) as connection:  # the card works again after reinsertion
        assert PivSession(connection).pin_status().attempts_remaining == 3


def test_a_card_reset_after_it_was_pulled_is_gone_only_once_pcscd_saw_it_go(
        card: VirtualCardSlot) -> None:
    """A client that resets the card after it was pulled (SCardDisconnect with
    SCARD_RESET_CARD) makes pcscd ask vpcd whether it is there: vpcd drops the closed socket,
    and pcscd marks the reader empty while its event thread has not seen the card go. A card
    inserted before that thread looks again would be taken for the pulled one (the reader
    stays empty with the card in it); wait_card waits for the event thread, so the next card
    is seen."""
    from smartcard import scard

    wait_card(READER0, True)
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == scard.SCARD_S_SUCCESS
    try:
        hresult, handle, _protocol = scard.SCardConnect(
            context, READER0, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1)
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
        card.remove()
        scard.SCardDisconnect(handle, scard.SCARD_RESET_CARD)
    finally:
        scard.SCardReleaseContext(context)
    wait_card(READER0, False)
    card.insert()
    wait_card(READER0, True)
    with PcscConnection(READER0) as connection:
        assert connection.atr == card.card.atr


def test_monitor_replays_state_and_follows_changes(card_factory: CardFactory) -> None:
    first = card_factory(0, "first")
    monitor = ReaderMonitor(poll_ms=200).start()
    try:
        wait_for(monitor, lambda snap: snap.readers.get(READER0) is not None)
        events: queue.Queue[ReaderEvent] = queue.Queue()
        unsubscribe = monitor.subscribe(events.put)
        replay = [events.get(timeout=30) for _ in range(4)]
        assert replay == [
            ReaderEvent(EventKind.SERVICE_UP),
            ReaderEvent(EventKind.READER_ADDED, READER0),
            ReaderEvent(EventKind.CARD_INSERTED, READER0, first.card.atr),
            ReaderEvent(EventKind.READER_ADDED, READER1),
        ]
        second = card_factory(1, "second")
        assert events.get(timeout=30) == ReaderEvent(
            EventKind.CARD_INSERTED, READER1, second.card.atr
        )
        first.remove()
        assert events.get(timeout=30) == ReaderEvent(
            EventKind.CARD_REMOVED, READER0, first.card.atr
        )
        unsubscribe()
        second.remove()
        wait_for(monitor, lambda snap: snap.readers.get(READER1) is None)
        assert events.empty()
    finally:
        monitor.stop()


def test_survives_pcscd_going_away(card: VirtualCardSlot, running_pcscd: Pcscd) -> None:
    monitor = ReaderMonitor(poll_ms=200).start()
    events: queue.Queue[ReaderEvent] = queue.Queue()
    try:
        wait_for(monitor, lambda snap: snap.readers.get(READER0) is not None)
        monitor.subscribe(events.put)
        _drain(events)  # the replayed current state
        connection = PcscConnection(READER0)
        running_pcscd.stop()
        with pytest.raises(PcscServiceUnavailable, match="pcscd"):
            list_readers()
        with pytest.raises((PcscServiceUnavailable, CardAbsent)):
            connection.send_and_receive(b"\x00\xa4\x04\x00")
        connection.close()
        wait_for(monitor, lambda snap: not snap.available)
        running_pcscd.start()
        card.remove()  # the old vpcd socket died with pcscd: insert the card again
        card.insert()
        wait_for(monitor, lambda snap: snap.readers.get(READER0) is not None, timeout=10)
        seen = _drain(events)
        kinds = [event.kind for event in seen]
        assert kinds[:3] == [
            EventKind.CARD_REMOVED,
            EventKind.READER_REMOVED,
            EventKind.READER_REMOVED,
        ]
        assert kinds[3] == EventKind.SERVICE_DOWN and EventKind.SERVICE_UP in kinds[4:]
        back = seen[kinds.index(EventKind.SERVICE_UP):]
        assert ReaderEvent(EventKind.CARD_INSERTED, READER0, card.card.atr) in back
        with PcscConnection(READER0) as again:
            assert PivSession(again).pin_status().attempts_remaining == 3
    finally:
        monitor.stop()
        running_pcscd.start()


def _drain(events: queue.Queue[ReaderEvent]) -> list[ReaderEvent]:
    out = []
    while not events.empty():
        out.append(events.get_nowait())
    return out


def test_a_second_card_in_an_occupied_reader_is_refused(card: VirtualCardSlot,
                                                        running_pcscd: Pcscd,
                                                        tmp_path: Path) -> None:
    second = open_slot(tmp_path / "second.json", running_pcscd.port(0))
    with pytest.raises(ReaderOccupied, match="already holds a card"):
        second.insert(answer_timeout=1.5)
    assert not second.inserted
    with PcscConnection(READER0) as connection:  # the first card is still the one served
        assert connection.atr == card.card.atr
        assert PivSession(connection).read_chuid().guid.endswith(
            bytes.fromhex(card.card.state.serial))


def test_runs_beside_another_pcscd_without_seeing_it(card: VirtualCardSlot,
                                                     tmp_path: Path) -> None:
    """Another pcscd (another test run, or the system's) keeps its own readers and cards."""
    other = PrivatePcscd(tmp_path / "other")
    with other:
        assert set(other.ports or ()).isdisjoint(PCSCD.ports or ())
        with open_slot(tmp_path / "other.json", other.port(1)) as other_card:
            env = {**os.environ, **other.environment}

            def listing() -> list[str]:
                out = subprocess.run(["opensc-tool", "-l"], env=env, capture_output=True,
                                     text=True, timeout=30).stdout
                return [line.split() for line in out.splitlines() if "Virtual PCD" in line]

            deadline = time.monotonic() + 10
            while listing()[1][1] != "Yes" and time.monotonic() < deadline:
                time.sleep(0.1)
            # the other pcscd: its card in its reader 1, nothing in its reader 0
            assert [row[1] for row in listing()] == ["No", "Yes"]
            # this run's pcscd: only its own card, in reader 0
            with PcscConnection(READER0) as connection:
                assert connection.atr == card.card.atr
            with pytest.raises(CardAbsent):
                PcscConnection(READER1)
            assert other_card.inserted and card.inserted
    assert not other.socket_path.exists()


def test_pcscd_unavailable_is_logged_once_per_change(running_pcscd: Pcscd,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """While pcscd is away the monitor retries every 0.5 s; the log says so once, and once
    more when pcscd is back."""
    caplog.set_level(logging.INFO, logger="drivers.pcsc.monitor")
    monitor = ReaderMonitor(poll_ms=200).start()
    try:
        wait_for(monitor, lambda snap: snap.available)
        running_pcscd.stop()
        wait_for(monitor, lambda snap: not snap.available)
        time.sleep(2.5)  # five retries
        running_pcscd.start()
        wait_for(monitor, lambda snap: snap.available, timeout=10)
        time.sleep(0.5)
    finally:
        monitor.stop()
        running_pcscd.start()
    lines = [r.getMessage() for r in caplog.records if r.name == "drivers.pcsc.monitor"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("PC/SC service unavailable: ") and "pcscd" in lines[0]
    assert lines[1] == "PC/SC service (pcscd) reachable again"


def test_vpcd_ports_taken_by_another_process(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A port picked as free but taken before vpcd binds it: the pcscd moves to other ports;
    a restart on ports that are taken meanwhile fails with the reason and the log."""
    import simulators.smartcard.pcscd as pcscd_module

    with socket.socket() as holder:
        holder.bind(("", 0))
        holder.listen()
        taken = int(holder.getsockname()[1])
        picks = iter([(taken, taken + 1)])
        free = pcscd_module._free_port_pair
        monkeypatch.setattr(pcscd_module, "_free_port_pair", lambda: next(picks, None) or free())
        with PrivatePcscd(tmp_path / "moved") as moved:
            assert moved.ports is not None and taken not in moved.ports
        stuck = PrivatePcscd(tmp_path / "stuck")
        stuck.ports = (taken, taken + 1)
        with pytest.raises(PcscdError, match="could not listen on ports"):
            stuck.start()
        assert not stuck.running


def test_a_listener_may_read_the_snapshot(running_pcscd: Pcscd) -> None:
    """Events are delivered outside the snapshot lock (a health callback reads the state)."""
    monitor = ReaderMonitor(poll_ms=200)
    seen: list[tuple[EventKind, bool]] = []
    monitor.subscribe(lambda event: seen.append((event.kind, monitor.snapshot().available)))
    monitor.start()
    try:
        reader = threading.Thread(target=lambda: wait_for(monitor, lambda s: s.available))
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the monitor deadlocked delivering an event"
        assert (EventKind.SERVICE_UP, True) in seen
    finally:
        monitor.stop()
