"""Token logins lent to the native front end, each for its caller (docs/token.md, "The login
lent to authd-front").

With ``[server] front = "native"`` a login keeps its PIN until it is lent: the answer to its
``[token] lend_after_signs``-th good linked unary Sign lends it to the front end that sent the
call (a ``TokenLease``: the handle, its caller exactly as the front end described it, the
module's path, the token's serial and label, the PIN, ``max_sign_bytes``, the bounds of
``authd_rpc_seconds``), and the PIN is wiped here. The front end logs its own instances of the
module in with it (PKCS#11 logs in per process) and signs that caller's common Signs on that
handle itself; everything else still comes here. Only the front end this daemon started (the
link peer's pid) is lent anything. With a check before signing installed (the
certificate feature's, ``[certificate] ca_certificates``) nothing is lent: every signature
is checked here. A login is lent once: once its lease ended it stays the daemon's until the
next Login.

The daemon keeps the login: the lease's Signs are told in batches (their durations as counts
per bucket of ``authd_rpc_seconds``), counted, timed and access-logged as its own, and each
batch counts as a use of the login (``session_idle_seconds`` runs from the last lent Sign,
told at most ``REPORT_SECONDS`` late). It ends the lease (a recall, waited for up to
``RECALL_SECONDS`` where the caller may wait) whenever the login ends — Logout, expiry, a new
Login replacing it, the token removed — and before the login changes the token's objects
(GenerateKeyPair, ImportCertificate, DeleteObject); the front end answers its Signs in flight
first, logs out and says so (``LEASE_RETURN``). A front end that declines the lease (the
module will not load, the token is not in its slots, its C_Login fails) gives it back at
once and the daemon goes on signing. A link that goes away ends its leases on both sides.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from google.protobuf.message import Message

from authd.call_link import Answer, Lease, LinkPeer, current_call, current_peer
from authd.context import Caller
from authd.lent_calls import CALLER_FIELDS, Leases
from authd.metrics import LATENCY_BUCKETS
from authd.token.service import TokenService
from authd.token.sessions import TokenLogin
from authd.v1 import call_link_pb2
from drivers.pkcs11 import TokenEvent, TokenEventKind

log = logging.getLogger(__name__)

RECALL_SECONDS = 5.0  # how long an ending login waits for its lease to come back
REPORT_SECONDS = 1.0  # a lent Sign is told at most this late (and a quarter of the idle time)

def _ms(seconds: float) -> int:
    """A limit for the front end, in whole milliseconds rounded up (0: passed)."""
    return min(2**32 - 1, max(0, math.ceil(seconds * 1000)))


@dataclass
class _Lease:
    id: int
    login: TokenLogin
    peer: LinkPeer
    caller: Caller
    method: str
    served: int = 0
    streamed: int = 0  # SignStream requests signed on it
    asked: bool = False  # recalled already


class TokenLending(Leases[_Lease]):
    """The logins lent to the front end for one method (TokenService/Sign) and, if given,
    the requests of one streaming method (TokenService/SignStream) on them."""

    def __init__(self, service: TokenService, method: str, stream_method: str = "") -> None:
        self.service = service
        self.method = method
        settings = service.settings
        self._report_ms = max(1, int(min(REPORT_SECONDS, settings.session_idle_seconds / 4)
                                     * 1000))
        super().__init__(stream_method)
        self._watching = False
        service.lends = settings.lend_after_signs > 0
        service.sessions.on_end = self._ended
        service.on_change = lambda login: self.recall(login.handle, wait=True)

    def lending(self, caller: Caller, handle: str, answer: Answer) -> Answer:
        """``answer``, or, for a linked Sign on a login that is to be lent (its PIN kept, not
        lent now, the caller's own), one that lends it with a good answer."""
        call, peer = current_call(), current_peer()
        login = self.service.sessions.peek(handle)
        after = self.service.settings.lend_after_signs
        if (after <= 0 or call is None or peer is None or login is None or login.pin is None
                or not login.owned_by(caller) or self.service.guard is not None):
            return answer
        with self._state:
            if handle in self._leases:
                return answer

        def lend(response: Message | None, error: BaseException | None, /,
                 lease: Lease | None = None) -> None:
            if error is None and response is not None:
                login.linked_signs += 1
                if login.linked_signs >= after:
                    lease = self._grant(login, caller, call, peer)
            answer(response, error, lease)

        return lend

    def _grant(self, login: TokenLogin, caller: Caller, call: call_link_pb2.LinkedCall,
               peer: LinkPeer) -> call_link_pb2.TokenLease | None:
        self._watch()
        with self._state:
            # Checked and recorded together: a login ending now finds the lease to recall.
            if (login.handle in self._leases or not peer.connected or not peer.started_front()
                    or not self.service.sessions.live(login)):
                return None
            pin = login.take_pin()
            if pin is None:
                return None
            self._next_id += 1
            lease = _Lease(self._next_id, login, peer, caller, call.method)
            self._leases[login.handle] = lease
            self.lent_total += 1
        idle_left, max_left = self.service.sessions.left(login)
        out = call_link_pb2.TokenLease(
            id=lease.id, handle=login.handle, module=login.module.path, serial=login.serial,
            label=login.label, pin=pin, max_sign_bytes=self.service.settings.max_sign_bytes,
            seconds_bounds=LATENCY_BUCKETS, report_ms=self._report_ms,
            idle_ms=_ms(self.service.settings.session_idle_seconds), idle_left_ms=_ms(idle_left),
            max_left_ms=_ms(max_left), stream_method=self.stream_method)
        for name in CALLER_FIELDS:
            setattr(out, name, getattr(call, name))
        return out

    def _watch(self) -> None:
        """From the first lease on: a token removed ends its lent login's lease."""
        with self._state:
            if self._watching:
                return
            self._watching = True
        self.service.watcher.subscribe(self._token_event)

    def _token_event(self, event: TokenEvent) -> None:
        if event.kind is not TokenEventKind.REMOVED:
            return
        with self._state:
            handles = [h for h, lease in self._leases.items()
                       if lease.login.serial == event.token.serial]
        for handle in handles:
            self.recall(handle, wait=False)

    def _ended(self, login: TokenLogin, wait: bool) -> None:
        # A linked call (on the link's reader thread, which reads the return) does not wait.
        self.recall(login.handle, wait=wait and current_peer() is None)

    def recall(self, handle: str, *, wait: bool) -> None:
        """Ends the lease of ``handle``, if lent; ``wait``: until the front end gave it back
        (at most RECALL_SECONDS; then it is forgotten)."""
        lease = self._ask_back(handle)
        if lease is None or not wait:
            return
        if not self._back(handle, lease, RECALL_SECONDS):
            log.warning("the front end did not give a lent token login back in time",
                        extra={"fields": {"token": lease.login.serial}})

    # -- the front end's parts (the link's reader thread: Leases) -----------------------------
    def _key(self, lease: _Lease) -> str:
        return lease.login.handle

    def _recall(self, lease: _Lease) -> None:
        lease.peer.recall_token(lease.id)

    def _using(self, lease: _Lease) -> None:
        self.service.sessions.touch(lease.login)

    def _given_back(self, lease: _Lease, part: call_link_pb2.LinkedCall) -> None:
        log.debug("the front end gave a lent token login back",
                  extra={"fields": {"lease": part.id, "token": lease.login.serial,
                                    "calls": lease.served, "streamed": lease.streamed}})
