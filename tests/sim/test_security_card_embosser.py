"""The embosser driver against the embosser simulator and the other transports."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.embosser import (
    BadJob,
    Embosser,
    EmbosserOffline,
    JobState,
    PaperJam,
    PaperOut,
    Printer,
    open_transport,
)
from drivers.embosser.transport import LpTransport
from simulators.security_card.embosser import EmbosserSimulator, Fault

BRF = b"#A\r\n#B\r\n\f#C\r\n\f"


@pytest.fixture()
def sim() -> Iterator[EmbosserSimulator]:
    with EmbosserSimulator() as s:
        yield s


def test_job_is_embossed_and_reported_complete(sim: EmbosserSimulator) -> None:
    result = Embosser.open(sim.address).emboss("card-1", BRF)
    assert result.state is JobState.COMPLETED
    assert result.pages == 2
    assert result.bytes_sent == len(BRF)
    assert sim.last_job().data == BRF


def test_status_query(sim: EmbosserSimulator) -> None:
    embosser = Embosser.open(sim.address)
    status = embosser.status()
    assert status is not None and status.ready
    sim.set_fault(Fault.PAPER_OUT)
    status = embosser.status()
    assert status is not None and not status.ready and status.code // 1000 == 41


@pytest.mark.parametrize(("fault", "error"), [(Fault.PAPER_JAM, PaperJam),
                                              (Fault.PAPER_OUT, PaperOut)])
def test_faults_are_reported_and_nothing_is_embossed(sim: EmbosserSimulator, fault: Fault,
                                                     error: type[Exception]) -> None:
    sim.set_fault(fault)
    with pytest.raises(error) as info:
        Embosser.open(sim.address).emboss("card", BRF)
    assert getattr(info.value, "reason", "") in ("paper_jam", "paper_out")
    assert sim.jobs == []
    assert sim.refused_jobs == 1
    sim.set_fault(Fault.NONE)
    assert Embosser.open(sim.address).emboss("card", BRF).state is JobState.COMPLETED
    assert len(sim.jobs) == 1


def test_offline_embosser_refuses_then_comes_back(sim: EmbosserSimulator) -> None:
    embosser = Embosser.open(sim.address, timeout=2.0)
    sim.set_fault(Fault.OFFLINE)
    with pytest.raises(EmbosserOffline, match="offline"):
        embosser.emboss("card", BRF)
    sim.set_fault(Fault.NONE)
    assert embosser.emboss("card", BRF).state is JobState.COMPLETED


def test_non_brf_job_is_refused_before_sending(sim: EmbosserSimulator) -> None:
    embosser = Embosser.open(sim.address)
    for bad in (b"", "번호".encode(), b"\x00\x01", b"~~~"):
        with pytest.raises(BadJob):
            embosser.emboss("card", bad)
    assert sim.jobs == []


def test_device_file_transport(tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    with pytest.raises(EmbosserOffline, match="not present"):
        Embosser.open(f"file://{device}").emboss("card", BRF)
    assert not device.exists()  # a device file is never created
    device.write_bytes(b"")
    result = Embosser.open(f"file://{device}").emboss("card", BRF)
    assert result.state is JobState.SENT
    assert device.read_bytes() == BRF


def test_spool_directory_transport_keeps_jobs_private(tmp_path: Path) -> None:
    result = Printer.open(f"dir://{tmp_path}").print_job("card 1/../x", b"plain card")
    assert result.state is JobState.QUEUED
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [result.job_id]
    assert "/" not in result.job_id
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    with pytest.raises(EmbosserOffline):
        Printer.open(f"dir://{tmp_path}/missing").print_job("card", b"x")


def test_print_queue_without_lp_is_offline() -> None:
    transport = LpTransport("braille", command="no-such-lp-command")
    with pytest.raises(EmbosserOffline, match="not installed"):
        transport.submit("card", BRF)


@pytest.mark.parametrize("url", ["ftp://x", "socket://", "lp://", "nonsense"])
def test_bad_addresses_are_refused(url: str) -> None:
    with pytest.raises(BadJob):
        open_transport(url)


def _exchange(address: str, data: bytes) -> bytes:
    host, _, port = address.removeprefix("socket://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("query", [
    b"\x1b%-12345X@PJL SIMULATOR LASTJOB\r\n\x1b%-12345X",  # what older versions answered
    b"\x1b%-12345X@PJL INFO STATUS\r\n\x1b%-12345X",
    b"",
])
def test_nothing_embossed_comes_back_over_the_port(sim: EmbosserSimulator, query: bytes) -> None:
    """A card's codes stay on the paper: whatever a local client sends, no job comes back."""
    Embosser.open(sim.address).emboss("card", BRF)
    reply = _exchange(sim.address, query)
    assert BRF not in reply and BRF[:16] not in reply
    assert sim.jobs[0].data == BRF  # read in process only
