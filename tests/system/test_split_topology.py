"""The split deployment as a bank runs it: a center of two nodes on one PostgreSQL, and the
branch nodes of two institutions, each a separate process with its own simulated devices,
reaching the center over mTLS through TCP proxies this test controls.

The scenario: a HID OTP device provisioned at bank A's branch, registered online at bank B,
locked by failures at both, unlocked by a teller at bank B's branch; a braille card issued at a
branch. Then the link is cut, delayed and its nodes killed at each step of a provisioning, and
each time nothing is half-done: either the center enrolled the seed and the device holds it
(its codes verify), or nothing is enrolled and the device is restored (or left reprogrammable).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.client import dev_channel, identity_channel
from authd.demo_steps.topology import (
    ServeProcess,
    branch_config,
    center_config,
    create_pki,
    terminal_name,
)
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import (
    hid_otp_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    security_card_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)
from authd.v1 import security_card_pb2 as S
from simulators.security_card.cardholder import Question, VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator
from tests.conftest import KEK_PIN_FILE, make_config, wait_for
from tests.split import operator
from tests.tcpproxy import DELAY, DROP_REPLIES, TcpProxy

BANKS = ("bank-a", "bank-b")
TTL = 8.0  # seconds a reservation waits for the branch's confirmation
DEVICE_DELAY_MS = 700  # a slow device: each command keeps it busy this long
LINK = {"connect_timeout": 1.0, "call_timeout": 3.0, "health_interval": 0.5,
        "recovery_interval": 0.5}


class Branch:
    """A branch node process, its proxies to the two center nodes, its teller's stubs."""

    def __init__(self, node: ServeProcess, proxies: list[TcpProxy], institution: str) -> None:
        self.node, self.proxies, self.institution = node, proxies, institution
        self.channel = dev_channel(node.address, institution, "branch", "teller-07")
        self.hid = hid_otp_pb2_grpc.HidOtpServiceStub(self.channel)
        self.sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(self.channel)
        self.otp = otp_pb2_grpc.OtpServiceStub(self.channel)
        self.cards = security_card_pb2_grpc.SecurityCardServiceStub(self.channel)

    def link(self, mode: str, delay: float = 0.0) -> None:
        for proxy in self.proxies:
            proxy.set(mode, delay)

    def plug(self, serial: int, delay_ms: int = 0) -> None:
        self.sim.PlugDevice(H.PlugSimulatedHidDeviceRequest(
            device_serial=serial, processing_delay_ms=delay_ms), timeout=30)

    def press(self, serial: int) -> str:
        return str(self.sim.PressButton(H.PressSimulatedHidButtonRequest(
            device_serial=serial), timeout=30).typed)

    def provision(self, serial: int) -> H.ProvisionHidDeviceResponse:
        return self.hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
            customer_id="C-1",
            device_serial=serial, operator_id="T-0042"), timeout=120)

    def device(self, serial: int) -> H.HidDevice:
        found = [d for d in self.hid.ListDevices(H.ListHidDevicesRequest(), timeout=30).devices
                 if d.device_serial == serial]
        assert len(found) == 1
        return found[0]

    def serving(self, service: str) -> bool:
        stub = health_pb2_grpc.HealthStub(self.channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self.channel.close()
        if self.node.alive:
            self.node.stop()
        for proxy in self.proxies:
            proxy.close()


class Deployment:
    def __init__(self, root: Path, store_url: str, embosser: EmbosserSimulator) -> None:
        self.root, self.store_url = root, store_url
        self.pki = create_pki(root / "pki", BANKS)
        make_config(root / "cfg")  # writes the session's KEK PIN file
        self.env = {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE)}
        self.centers: list[ServeProcess] = []
        self.branches: dict[str, Branch] = {}
        self.channels: list[grpc.Channel] = []
        try:
            for n in range(2):
                self.centers.append(self._center(n))
            for bank in BANKS:
                self.branches[bank] = self._branch(bank, embosser)
        except BaseException:
            self.close()
            raise

    def _center(self, n: int) -> ServeProcess:
        raw = center_config(self.pki, hid_otp={"reservation_seconds": TTL,
                                               "sweep_interval": 0.5})
        return ServeProcess(f"center-{n}", self.root / f"center-{n}", raw,
                            store_url=self.store_url, env=self.env)

    def _branch(self, bank: str, embosser: EmbosserSimulator) -> Branch:
        proxies = [TcpProxy(("127.0.0.1", c.port)) for c in self.centers]
        raw = branch_config(self.pki, bank, [p.address for p in proxies],
                            server={"insecure": True}, center=LINK,
                            hid_otp={"response_timeout": 5.0},
                            smartcard={"enabled": False},
                            security_card={"embosser": embosser.address})
        node = ServeProcess(f"branch-{bank}", self.root / f"branch-{bank}", raw,
                            store_url=f"sqlite:///{self.root / f'branch-{bank}' / 'authd.db'}",
                            env=self.env)
        return Branch(node, proxies, bank)

    def restart_center(self, n: int) -> None:
        """A killed center node back on its port (its proxies still point there)."""
        old = self.centers[n]
        assert not old.alive
        port = old.port
        raw = center_config(self.pki, server={"listen": f"127.0.0.1:{port}"},
                            hid_otp={"reservation_seconds": TTL, "sweep_interval": 0.5})
        self.centers[n] = ServeProcess(f"center-{n}", self.root / f"center-{n}", raw,
                                       store_url=self.store_url, env=self.env)

    def center_channel(self, name: str) -> grpc.Channel:
        alive = next(c for c in self.centers if c.alive)
        channel = identity_channel(alive.address, self.pki, name)
        self.channels.append(channel)
        return channel

    def backend(self, bank: str) -> otp_pb2_grpc.OtpServiceStub:
        return otp_pb2_grpc.OtpServiceStub(self.center_channel(f"{bank}-backend"))

    def verify(self, bank: str, otp_serial: str, code: str) -> int:
        return int(self.backend(bank).Verify(otp_pb2.VerifyRequest(
            serial=otp_serial, code=code), timeout=30).outcome)

    def enrolled(self, otp_serial: str) -> bool:
        ops = otp_pb2_grpc.OtpServiceStub(self.center_channel("ops"))
        try:
            ops.GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return False
        return True

    def audit(self, target: str) -> list[system_pb2.AuditEntry]:
        ops = system_pb2_grpc.SystemServiceStub(self.center_channel("ops"))
        return list(ops.ListAudit(system_pb2.ListAuditRequest(target=target), timeout=30)
                    .entries)

    def reservation(self, device_serial: int) -> str:
        """The state of the device's latest reservation at the center ("" when none)."""
        with psycopg.connect(self.store_url, autocommit=True) as conn:
            row = conn.execute("SELECT state FROM hid_reservations WHERE device_serial = %s"
                               " ORDER BY created_at DESC LIMIT 1", (device_serial,)).fetchone()
        return str(row[0]) if row else ""

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for branch in self.branches.values():
            branch.close()
        for center in self.centers:
            if center.alive:
                center.stop()


@pytest.fixture
def embosser() -> Iterator[EmbosserSimulator]:
    with EmbosserSimulator() as sim:
        yield sim


@pytest.fixture
def deployment(tmp_path: Path, pg_url: str, embosser: EmbosserSimulator) -> Iterator[Deployment]:
    d = Deployment(tmp_path, pg_url, embosser)
    yield d
    d.close()


def otp_serial_of(serial: int) -> str:
    return f"HID-{serial:010d}"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**len(code):0{len(code)}d}"


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a thread; the list gets its result or its gRPC error."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except grpc.RpcError as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def when_reserved(d: Deployment, serial: int) -> None:
    """Wait until the center holds a pending reservation of the device, and its answer has
    reached the branch: the slow device is then being programmed (two commands of
    DEVICE_DELAY_MS each) before the branch asks the center to confirm."""
    assert wait_for(lambda: d.reservation(serial) == "pending", timeout=30, interval=0.02)
    time.sleep(0.3)


def holds_its_enrollment(d: Deployment, branch: Branch, serial: int) -> bool:
    """The center enrolled it, and the device holds the seed: its code verifies."""
    return d.enrolled(otp_serial_of(serial)) and d.verify(
        branch.institution, otp_serial_of(serial), branch.press(serial)
    ) == otp_pb2.VERIFY_OUTCOME_ACCEPTED


def restored(d: Deployment, branch: Branch, serial: int) -> bool:
    """Nothing enrolled, and the device's slots are empty again."""
    device = branch.device(serial)
    return (not d.enrolled(otp_serial_of(serial)) and not device.provisioned
            and not device.slot1_configured and not device.slot2_configured)


# --------------------------------------------------------------------------- the scenario


def test_a_day_across_the_center_and_two_branches(deployment: Deployment,
                                                  embosser: EmbosserSimulator) -> None:
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    serial = 41_000_001
    otp_serial = otp_serial_of(serial)

    # A HID device provisioned at bank A's branch: enrolled at the center.
    a.plug(serial)
    result = a.provision(serial)
    assert (result.otp_serial, result.institution) == (otp_serial, "bank-a")
    done = [e for e in d.audit(otp_serial) if e.action == "hid.provision"]
    assert [(e.outcome, e.subject, operator(e)) for e in done] == [
        ("ok", terminal_name("bank-a"), "T-0042")]

    # The customer registers it online at bank B with the code the device types.
    b_backend = d.backend("bank-b")
    b_backend.Register(otp_pb2.RegisterRequest(customer_id="B-1", serial=otp_serial,
                                               strong_authentication=True,
                                               code=a.press(serial)), timeout=30)
    for bank in BANKS:
        assert d.verify(bank, otp_serial, a.press(serial)) == otp_pb2.VERIFY_OUTCOME_ACCEPTED

    # The lockout counts across institutions: 4 wrong at A and 6 at B lock it at both.
    code = a.press(serial)
    for bank, times in (("bank-a", 4), ("bank-b", 6)):
        for _ in range(times):
            assert d.verify(bank, otp_serial, wrong(code)) != otp_pb2.VERIFY_OUTCOME_ACCEPTED
    for bank in BANKS:
        assert d.verify(bank, otp_serial, a.press(serial)) == otp_pb2.VERIFY_OUTCOME_LOCKED
    # A teller at bank B's branch unlocks it (the customer is there with an ID).
    b.otp.Unlock(otp_pb2.UnlockRequest(serial=otp_serial, operator_id="park",
                                       reason="ID checked"), timeout=30)
    unlock = [e for e in d.audit(otp_serial) if e.action == "otp.unlock"]
    assert [(e.institution, e.subject, operator(e)) for e in unlock] == [
        ("bank-b", terminal_name("bank-b"), "park")]
    assert d.verify("bank-a", otp_serial, a.press(serial)) == otp_pb2.VERIFY_OUTCOME_ACCEPTED
    # Bank B's teller cannot use bank A's branch node.
    with pytest.raises(grpc.RpcError) as err:
        otp_pb2_grpc.OtpServiceStub(dev_channel(a.node.address, "bank-b", "branch", "x")
                                    ).GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # A braille card issued at bank A's branch, embossed there, answered online.
    issued = a.cards.IssueCard(S.IssueSecurityCardRequest(
        customer_id="cust-braille-1", medium=S.SECURITY_CARD_MEDIUM_BRAILLE), timeout=60)
    assert issued.print_job.state == S.SECURITY_CARD_PRINT_COMPLETED
    holder = VirtualCardholder(embosser.last_job().data)
    cards = security_card_pb2_grpc.SecurityCardServiceStub(d.center_channel("bank-a-backend"))
    ch = cards.StartChallenge(S.StartSecurityCardChallengeRequest(serial=issued.card.serial))
    question = Question(ch.first.code_number, tuple(p - 1 for p in ch.first.digit_positions),
                        ch.second.code_number, tuple(p - 1 for p in ch.second.digit_positions))
    assert cards.VerifyAnswer(S.VerifySecurityCardAnswerRequest(
        challenge_id=ch.challenge_id, answer=holder.answer(question))).accepted


# --------------------------------------------------------------------------- link faults


def test_the_link_cut_at_each_step_of_a_provisioning(deployment: Deployment) -> None:
    d = deployment
    a = d.branches["bank-a"]

    # 1. Before the reservation: nothing reaches the center, the device is untouched.
    serial = 42_000_001
    a.plug(serial, DEVICE_DELAY_MS)
    a.link("refuse")
    with pytest.raises(grpc.RpcError) as err:
        a.provision(serial)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "center is unreachable" in str(err.value.details())
    assert wait_for(lambda: not a.serving("authd.v1.HidOtpService"), timeout=10)
    assert a.press(serial) == ""  # device-local work goes on
    a.link("forward")
    assert wait_for(lambda: a.serving("authd.v1.HidOtpService"), timeout=15)
    assert d.reservation(serial) == "" and restored(d, a, serial)

    # 2. Cut while the device is programmed: the confirmation cannot be sent; the branch
    # undoes the device, and the center's reservation expires.
    serial = 42_000_002
    a.plug(serial, DEVICE_DELAY_MS)
    thread, out = in_background(lambda: a.provision(serial))
    when_reserved(d, serial)
    a.link("refuse")
    thread.join(120)
    assert isinstance(out[0], grpc.RpcError) and out[0].code() == grpc.StatusCode.UNAVAILABLE
    assert wait_for(lambda: d.reservation(serial) == "expired", timeout=30)
    a.link("forward")
    assert wait_for(lambda: a.serving("authd.v1.HidOtpService"), timeout=15)
    assert restored(d, a, serial)

    # 3. The confirmation's answer is lost (the center committed) or late (2.5 s each way,
    # the call times out after 3 s): the device stays programmed, and the branch settles it
    # with the center once the link is back.
    for n, (mode, delay) in enumerate(((DROP_REPLIES, 0.0), (DELAY, 2.5))):
        serial = 42_000_003 + n
        a.plug(serial, DEVICE_DELAY_MS)
        thread, out = in_background(lambda serial=serial: a.provision(serial))
        when_reserved(d, serial)
        a.link(mode, delay)
        thread.join(120)
        assert isinstance(out[0], grpc.RpcError), f"{mode}: {out[0]}"
        assert out[0].code() == grpc.StatusCode.UNAVAILABLE
        a.link("forward")
        assert wait_for(lambda serial=serial: d.reservation(serial) == "confirmed", timeout=30)
        assert wait_for(lambda serial=serial: a.device(serial).provisioned, timeout=30)
        assert holds_its_enrollment(d, a, serial), mode


def test_a_center_node_dies_mid_provisioning_and_the_other_confirms(
        deployment: Deployment) -> None:
    d = deployment
    a = d.branches["bank-a"]
    serial = 43_000_001
    a.plug(serial, DEVICE_DELAY_MS)
    thread, out = in_background(lambda: a.provision(serial))
    when_reserved(d, serial)
    # The node the branch reserved with (the first of its urls, both being up) dies; the
    # confirmation goes to the other one.
    reserved_at = 0
    d.centers[reserved_at].kill()
    thread.join(120)
    assert not isinstance(out[0], grpc.RpcError), out[0]
    assert out[0].otp_serial == otp_serial_of(serial)
    assert holds_its_enrollment(d, a, serial)
    # The node comes back on its port, and the branch uses it again when the other dies.
    d.restart_center(reserved_at)
    d.centers[1 - reserved_at].kill()
    serial = 43_000_002
    a.plug(serial)
    assert a.provision(serial).otp_serial == otp_serial_of(serial)
    assert holds_its_enrollment(d, a, serial)


def test_a_branch_node_that_dies_mid_provisioning_leaves_nothing_enrolled(
        deployment: Deployment) -> None:
    d = deployment
    a = d.branches["bank-a"]
    serial = 44_000_001
    a.plug(serial, DEVICE_DELAY_MS)
    thread, _ = in_background(lambda: a.provision(serial))
    when_reserved(d, serial)
    started = time.monotonic()
    a.node.kill()  # the branch dies while it programs the device
    thread.join(60)
    # Nobody confirms: the center expires the reservation, and nothing is enrolled.
    assert wait_for(lambda: d.reservation(serial) == "expired", timeout=TTL + 30)
    assert time.monotonic() - started >= TTL - 1
    assert not d.enrolled(otp_serial_of(serial))
    outcomes = [e.outcome for e in d.audit(otp_serial_of(serial))
                if e.action == "hid.provision"]
    assert outcomes == ["expired"]
