"""The native front end's count of every call it answered, merged into the daemon's metrics
endpoint as ``authd_front_answers_total{method, code, reason}``.

authd-front answers some calls itself — admission refusals (RESOURCE_EXHAUSTED, BUSY), requests
that do not parse, deadlines that passed before the engine got a verification, the daemon or
its engine unreachable — and those never reach the daemon's ``authd_rpcs_total``. The front
end counts every call it answers, by method, status code and the ErrorInfo reason, in a file
the daemon makes in its private run directory and maps (``native/front/tally.h`` describes the
table): a count is an atomic add on the shared page, so a scrape reads it exact at that
moment, and a front end restarted by the daemon goes on counting in the same entries.
``authd_front_answers_total`` minus ``authd_rpcs_total`` of a method is what the front end
answered without the daemon.

The file's header also carries what waits in the front end's links, not yet sent to the daemon
(set by the front end as it changes), served as ``authd_front_queued{link}``: ``engine``, the
verifications queued for the engine beyond the frames it holds; ``calls``, the linked calls and
stream parts queued for the call link; and, as ``authd_front_lent_stream_signing_max``, the most
requests of one lent ``SignStream`` that were signing at once (a high-water mark)."""

from __future__ import annotations

import mmap
import os
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from authd import metrics

MAGIC = b"AFTALLY2"
CAPACITY = 1024
_HEADER = 32
_SIGNING = 12
_GAUGES = 16
LINKS = ("engine", "calls")  # the header's gauges, in their order
_ENTRY = 192
_METHOD = 128
_REASON = 48
_READY = 2
_CODES = {int(code.value[0]): code.name for code in grpc.StatusCode}

Key = tuple[str, str, str]  # method, code name, reason


class FrontTally:
    """The file one front end counts in; made empty when the daemon starts its front end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = _HEADER + CAPACITY * _ENTRY
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            os.pwrite(fd, MAGIC + struct.pack("<II", CAPACITY, 0), 0)
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)

    def counts(self) -> Counter[Key]:
        out: Counter[Key] = Counter()
        view = self._map
        for i in range(CAPACITY):
            at = _HEADER + i * _ENTRY
            state, code, count = struct.unpack_from("<IIQ", view, at)
            if state != _READY:
                continue
            method = bytes(view[at + 16:at + 16 + _METHOD]).split(b"\0", 1)[0].decode(
                "utf-8", "replace")
            reason = bytes(view[at + 16 + _METHOD:at + 16 + _METHOD + _REASON]).split(
                b"\0", 1)[0].decode("utf-8", "replace")
            signed = code - (1 << 32) if code >= 1 << 31 else code
            out[(method, _CODES.get(signed, "OTHER"), reason)] += count
        return out

    def queued(self) -> dict[str, int]:
        """What waits in each of the front end's links (``LINKS``), not yet sent."""
        values = struct.unpack_from(f"<{len(LINKS)}Q", self._map, _GAUGES)
        return dict(zip(LINKS, values, strict=True))

    def lent_stream_signing(self) -> int:
        """The most requests of one lent SignStream signing at once so far."""
        return int(struct.unpack_from("<I", self._map, _SIGNING)[0])

    def close(self) -> None:
        _COLLECTOR.retire(self)
        self._map.close()


class _Collector(Collector):
    """Every front end of this process: those running, and what stopped ones counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: list[FrontTally] = []
        self._done: Counter[Key] = Counter()

    def add(self, tally: FrontTally) -> None:
        with self._lock:
            self._live.append(tally)

    def retire(self, tally: FrontTally) -> None:
        with self._lock:
            if tally in self._live:
                self._live.remove(tally)
                self._done.update(tally.counts())

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        family = CounterMetricFamily(
            "authd_front_answers",
            "calls the native front end answered, by method, status code and reason, also "
            "those it answered itself without the daemon (admission, bad requests, deadlines, "
            "the daemon unreachable)", labels=("method", "code", "reason"))
        queued = Counter[str]()
        signing = 0
        with self._lock:
            total = Counter(self._done)
            for tally in self._live:
                total.update(tally.counts())
                queued.update(tally.queued())
                signing = max(signing, tally.lent_stream_signing())
            live = bool(self._live)
        for (method, code, reason), count in sorted(total.items()):
            family.add_metric([method, code, reason], float(count))
        yield family
        if live:
            waiting = GaugeMetricFamily(
                "authd_front_queued", "what waits in the native front end's links, not yet "
                "sent to the daemon: verifications for the engine, linked calls and stream "
                "parts for the call link", labels=("link",))
            for link in LINKS:
                waiting.add_metric([link], float(queued[link]))
            yield waiting
            yield GaugeMetricFamily(
                "authd_front_lent_stream_signing_max", "the most requests of one SignStream "
                "lent to the native front end that it signed at once", value=float(signing))


_COLLECTOR = _Collector()
metrics.REGISTRY.register(_COLLECTOR)


def open_tally(path: Path) -> FrontTally:
    tally = FrontTally(path)
    _COLLECTOR.add(tally)
    return tally
