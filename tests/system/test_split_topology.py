"""The split deployment as a bank runs it: a center of two nodes on one PostgreSQL, and the
branch nodes of bank A and bank B, each an ``authd serve`` process on its own port serving
mTLS, with its own simulated devices, reaching the center over mTLS through TCP proxies this
test controls (center node 0 reaches PostgreSQL through one too).

One deployment serves the module (its start is most of the time); before each test every node
is running again and every proxy forwards, and each test uses serials of its own, so the tests
run alone and in any order. What is shown:

- OTP: a HID device provisioned at A's branch, registered online at B; wrong codes at both
  banks, at both center nodes at once: locked after exactly ten, everywhere; unlocked at B's
  branch, the teller in the center's audit;
- a braille card issued at a branch, embossed there, answered online at the center;
- a token registered at a branch, its exemption asked by a backend at the center;
- privacy: bank B's branch node gets for bank A's devices, cards, tokens and customers the
  answers of unknown ones;
- a customer's kind changed by a teller at a branch node, recorded at the center, not
  learned by the other bank;
- faults: a center node killed (SIGKILL) while both branches work; both center nodes stopped;
  a center node that loses its store; the link cut, its answers lost or late, and a branch
  node killed at each step of a provisioning. Each time nothing is lost, doubled or half-done.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.center.link import NODE_SERVICE
from authd.client import identity_channel
from authd.demo_steps.topology import (
    ServeProcess,
    branch_config,
    center_config,
    create_pki,
    terminal_name,
)
from authd.errors import details_of
from authd.v1 import customer_pb2 as C
from authd.v1 import (
    customer_pb2_grpc,
    hid_otp_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    policy_pb2_grpc,
    security_card_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    token_pb2_grpc,
)
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import policy_pb2 as P
from authd.v1 import security_card_pb2 as S
from authd.v1 import token_pb2 as T
from simulators.security_card.cardholder import Question, VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.answers import answer_of
from tests.conftest import KEK_PIN_FILE, joined, make_config, wait_for
from tests.pgcluster import PgCluster
from tests.split import operator
from tests.tcpproxy import DELAY, DROP_REPLIES, FORWARD, REFUSE, TcpProxy

BANKS = ("bank-a", "bank-b")
TTL = 6.0  # seconds a reservation waits for the branch's confirmation
DEVICE_DELAY_MS = 600  # a slow device: each command keeps it busy this long
LINK = {"connect_timeout": 1.0, "call_timeout": 2.0, "health_interval": 0.3,
        "recovery_interval": 0.5}
CENTER_SECTIONS: dict[str, Any] = {
    "hid_otp": {"reservation_seconds": TTL, "sweep_interval": 0.5},
    "store": {"health_interval_seconds": 0.3, "timeout_seconds": 2.0},
}
# What a branch node serves on the center's behalf, and what it does with its own devices.
CENTER_SERVICES = ("authd.v1.OtpService", "authd.v1.HidOtpService",
                   "authd.v1.SecurityCardService", "authd.v1.CustomerService",
                   "authd.v1.BranchRegistrationService")
LOCAL_SERVICES = ("authd.v1.TokenService",)


def serving(channel: grpc.Channel, service: str = "") -> bool:
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
    except grpc.RpcError:
        return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


class Branch:
    """A branch node process, its proxies to the two center nodes, its teller's stubs."""

    def __init__(self, d: Deployment, institution: str, order: tuple[int, ...]) -> None:
        self.d, self.institution, self.order = d, institution, order
        self.proxies = [TcpProxy(("127.0.0.1", d.centers[n].port)) for n in order]
        self.node = self._start()
        self._stubs()

    def _start(self) -> ServeProcess:
        raw = branch_config(self.d.pki, self.institution, [p.address for p in self.proxies],
                            center=LINK, hid_otp={"response_timeout": 5.0},
                            smartcard={"enabled": False},
                            token={"poll_interval": 0.1, "rescan_interval": 0.1},
                            security_card={"embosser": self.d.embosser.address})
        root = self.d.root / f"branch-{self.institution}"
        return ServeProcess(f"branch-{self.institution}", root, raw,
                            store_url=f"sqlite:///{root / 'authd.db'}", env=self.d.env)

    def _stubs(self) -> None:
        self.channel = identity_channel(self.node.address, self.d.pki,
                                        f"{self.institution}-teller")
        self.hid = hid_otp_pb2_grpc.HidOtpServiceStub(self.channel)
        self.sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(self.channel)
        self.otp = otp_pb2_grpc.OtpServiceStub(self.channel)
        self.cards = security_card_pb2_grpc.SecurityCardServiceStub(self.channel)
        self.tokens = token_pb2_grpc.TokenServiceStub(self.channel)
        self.customers = customer_pb2_grpc.CustomerServiceStub(self.channel)
        self.registrations = customer_pb2_grpc.BranchRegistrationServiceStub(self.channel)

    def restart(self) -> None:
        self.channel.close()
        self.node.kill()
        self.node = self._start()
        self._stubs()

    def link(self, mode: str, delay: float = 0.0) -> None:
        for proxy in self.proxies:
            proxy.set(mode, delay)

    def plug(self, serial: int, delay_ms: int = 0) -> None:
        self.sim.PlugDevice(H.PlugSimulatedHidDeviceRequest(
            device_serial=serial, processing_delay_ms=delay_ms), timeout=30)

    def processing(self, serial: int) -> bool:
        """Whether the device is processing a command written to it now."""
        return bool(self.sim.GetDeviceState(H.GetSimulatedHidDeviceStateRequest(
            device_serial=serial), timeout=30).processing)

    def press(self, serial: int) -> str:
        return str(self.sim.PressButton(H.PressSimulatedHidButtonRequest(
            device_serial=serial), timeout=30).typed)

    def provision(self, serial: int) -> H.ProvisionHidDeviceResponse:
        return self.hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
            device_serial=serial, operator_id="T-0042",
            customer_id=f"{self.institution[-1].upper()}-1"), timeout=120)

    def device(self, serial: int) -> H.HidDevice:
        found = [d for d in self.hid.ListDevices(H.ListHidDevicesRequest(), timeout=30).devices
                 if d.device_serial == serial]
        assert len(found) == 1
        return found[0]

    def serving(self, service: str = "") -> bool:
        return serving(self.channel, service)

    def node_service(self, n: int) -> str:
        """The health service of center node ``n`` as this branch's link sees it."""
        return NODE_SERVICE + self.proxies[self.order.index(n)].address

    @contextlib.contextmanager
    def login(self, token: SoftHsmToken) -> Iterator[str]:
        """A login on the token, ended afterwards (SoftHSM2's new tokens appear to the node
        only while no session is open)."""
        assert wait_for(lambda: any(t.serial == token.serial for t in self.tokens.ListTokens(
            T.ListTokensRequest(), timeout=30).tokens), timeout=15)
        session = str(self.tokens.Login(T.TokenLoginRequest(
            token_serial=token.serial, pin=token.pin), timeout=30).session)
        try:
            yield session
        finally:
            with contextlib.suppress(grpc.RpcError):
                self.tokens.Logout(T.TokenLogoutRequest(session=session), timeout=30)

    def close(self) -> None:
        self.channel.close()
        if self.node.alive:
            self.node.stop()
        for proxy in self.proxies:
            proxy.close()


class Deployment:
    def __init__(self, root: Path, store_url: str, embosser: EmbosserSimulator) -> None:
        self.root, self.store_url, self.embosser = root, store_url, embosser
        self.pki = create_pki(root / "pki", BANKS)
        make_config(root / "cfg")  # writes the session's KEK PIN file
        process_env()  # the session's SoftHSM2 tokens: the branch nodes' readers see them
        self.env = {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE)}
        parts = urlsplit(store_url)
        assert parts.hostname and parts.port
        # Center node 0 reaches PostgreSQL through a proxy: its store can be taken away.
        self.store_proxy = TcpProxy((parts.hostname, parts.port))
        proxied = f"{parts.username}@{self.store_proxy.address}"
        self.store_urls = [urlunsplit(parts._replace(netloc=proxied)), store_url]
        self.centers: list[ServeProcess] = []
        self.branches: dict[str, Branch] = {}
        self.channels: dict[tuple[str, int], grpc.Channel] = {}
        try:
            # One at a time: the first start of a node creates the key-encryption key's token.
            self.centers = [self._center(n) for n in range(2)]
            # Both branch nodes try center node 0 first.
            with ThreadPoolExecutor(2) as pool:
                made = pool.map(lambda bank: Branch(self, bank, (0, 1)), BANKS)
                self.branches = dict(zip(BANKS, made, strict=True))
        except BaseException:
            self.close()
            raise

    def _center(self, n: int, port: int = 0, **server: Any) -> ServeProcess:
        raw = center_config(self.pki, server={"listen": f"127.0.0.1:{port}", **server},
                            **CENTER_SECTIONS)
        return ServeProcess(f"center-{n}", self.root / f"center-{n}", raw,
                            store_url=self.store_urls[n], env=self.env)

    def restart_center(self, n: int) -> None:
        """A stopped or killed center node back on its port (the proxies point there)."""
        old = self.centers[n]
        assert not old.alive
        for key in [k for k in self.channels if k[1] == n]:
            self.channels.pop(key).close()
        self.centers[n] = self._center(n, old.port)

    def restart_center_crashing_at(self, n: int, *points: str) -> None:
        """Center node ``n`` again on its port, set to kill itself (SIGKILL) at ``points``
        (``[server] crash_points``); the branches' links see it up again."""
        if self.centers[n].alive:
            self.centers[n].stop()
        for key in [k for k in self.channels if k[1] == n]:
            self.channels.pop(key).close()
        self.centers[n] = self._center(n, self.centers[n].port, crash_points=list(points))
        assert wait_for(lambda: serving(self.channel("ops", n)), timeout=30)
        for branch in self.branches.values():
            assert wait_for(lambda b=branch: all(b.serving(s) for s in CENTER_SERVICES),
                            timeout=30)
        for branch in self.branches.values():  # each link takes node n for up again
            assert wait_for(lambda b=branch: b.serving(b.node_service(n)), timeout=30)

    def heal(self) -> None:
        """Every node running, every proxy forwarding, each branch's link seeing both center
        nodes: the state every test starts from."""
        self.store_proxy.set(FORWARD)
        dead = [n for n, c in enumerate(self.centers) if not c.alive]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self.restart_center, dead))
        for branch in self.branches.values():
            branch.link(FORWARD)
            if not branch.node.alive:
                branch.restart()
        for n in range(2):
            assert wait_for(lambda n=n: serving(self.channel("ops", n)), timeout=30)
        for branch in self.branches.values():
            assert wait_for(lambda b=branch: all(b.serving(s) for s in CENTER_SERVICES),
                            timeout=30)

    def channel(self, name: str, n: int | None = None) -> grpc.Channel:
        """An mTLS channel to center node ``n`` (default: a running one) as client ``name``."""
        if n is None:
            n = next(i for i, c in enumerate(self.centers) if c.alive)
        if (name, n) not in self.channels:
            self.channels[(name, n)] = identity_channel(self.centers[n].address, self.pki, name)
        return self.channels[(name, n)]

    def backend(self, bank: str, n: int | None = None) -> otp_pb2_grpc.OtpServiceStub:
        return otp_pb2_grpc.OtpServiceStub(self.channel(f"{bank}-backend", n))

    def verify(self, bank: str, otp_serial: str, code: str, n: int | None = None) -> int:
        return int(self.backend(bank, n).Verify(otp_pb2.VerifyRequest(
            serial=otp_serial, code=code), timeout=30).outcome)

    def status(self, otp_serial: str, n: int | None = None) -> otp_pb2.DeviceStatus | None:
        ops = otp_pb2_grpc.OtpServiceStub(self.channel("ops", n))
        try:
            return ops.GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return None

    def enrolled(self, otp_serial: str, n: int | None = None) -> bool:
        return self.status(otp_serial, n) is not None

    def audit(self, target: str) -> list[system_pb2.AuditEntry]:
        ops = system_pb2_grpc.SystemServiceStub(self.channel("ops"))
        return list(ops.ListAudit(system_pb2.ListAuditRequest(target=target), timeout=30)
                    .entries)

    def reservation(self, device_serial: int) -> str:
        """The state of the device's latest reservation at the center ("" when none)."""
        with psycopg.connect(self.store_url, autocommit=True) as conn:
            row = conn.execute("SELECT state FROM hid_reservations WHERE device_serial = %s"
                               " ORDER BY created_at DESC LIMIT 1", (device_serial,)).fetchone()
        return str(row[0]) if row else ""

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        for branch in self.branches.values():
            branch.close()
        for center in self.centers:
            if center.alive:
                center.stop()
        self.store_proxy.close()


@pytest.fixture(scope="module")
def embosser() -> Iterator[EmbosserSimulator]:
    with EmbosserSimulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def module_store(pg_cluster: PgCluster) -> Iterator[str]:
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    try:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception:
        pass


@pytest.fixture(scope="module")
def deployment_once(tmp_path_factory: pytest.TempPathFactory, module_store: str,
                    embosser: EmbosserSimulator) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("split"), module_store, embosser)
    yield d
    d.close()


@pytest.fixture
def deployment(deployment_once: Deployment) -> Deployment:
    deployment_once.heal()
    return deployment_once


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


def when_reserved(d: Deployment, branch: Branch, serial: int) -> None:
    """Wait until the center holds a pending reservation of the device, and its answer has
    reached the branch: the slow device is being programmed (its first command of
    DEVICE_DELAY_MS in progress) before the branch asks the center to confirm."""
    assert wait_for(lambda: d.reservation(serial) == "pending", timeout=30, interval=0.02)
    assert wait_for(lambda: branch.processing(serial), timeout=30, interval=0.02)


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


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# --------------------------------------------------------------------------- the day


def test_otp_across_both_institutions_with_the_lockout_exact(deployment: Deployment) -> None:
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    serial = 41_000_001
    otp_serial = otp_serial_of(serial)

    # A HID device provisioned at bank A's branch: enrolled at the center.
    a.plug(serial)
    result = a.provision(serial)
    assert (result.otp_serial, result.institution, result.customer_id) == (
        otp_serial, "bank-a", "A-1")
    done = [e for e in d.audit(otp_serial) if e.action == "hid.provision"]
    assert [(e.outcome, e.subject, operator(e)) for e in done] == [
        ("ok", terminal_name("bank-a"), "T-0042")]

    # The customer registers it online at bank B with the code the device types.
    d.backend("bank-b").Register(otp_pb2.RegisterRequest(
        customer_id="B-1", serial=otp_serial, strong_authentication=True,
        code=a.press(serial)), timeout=30)
    for bank in BANKS:
        assert d.verify(bank, otp_serial, a.press(serial)) == otp_pb2.VERIFY_OUTCOME_ACCEPTED

    # Ten wrong codes at once: four at bank A on center node 0, six at bank B on node 1.
    code = a.press(serial)
    asks = [("bank-a", 0)] * 4 + [("bank-b", 1)] * 6
    with ThreadPoolExecutor(len(asks)) as pool:
        outcomes = list(pool.map(lambda ask: d.verify(ask[0], otp_serial, wrong(code), ask[1]),
                                 asks))
    assert otp_pb2.VERIFY_OUTCOME_ACCEPTED not in outcomes
    status = d.status(otp_serial)
    assert status is not None
    assert (status.consecutive_failures, status.state) == (10, otp_pb2.DEVICE_STATE_LOCKED)
    assert sorted(r.failures_here for r in status.registrations) == [4, 6]
    for bank, n in (("bank-a", 1), ("bank-b", 0)):
        assert d.verify(bank, otp_serial, a.press(serial), n) == otp_pb2.VERIFY_OUTCOME_LOCKED

    # A teller at bank B's branch unlocks it (the customer is there with an ID).
    b.otp.Unlock(otp_pb2.UnlockRequest(serial=otp_serial, operator_id="park",
                                       reason="ID checked"), timeout=30)
    unlock = [e for e in d.audit(otp_serial) if e.action == "otp.unlock"]
    assert [(e.institution, e.subject, operator(e)) for e in unlock] == [
        ("bank-b", terminal_name("bank-b"), "park")]
    assert d.verify("bank-a", otp_serial, a.press(serial)) == otp_pb2.VERIFY_OUTCOME_ACCEPTED
    # Bank B's teller cannot use bank A's branch node.
    other = otp_pb2_grpc.OtpServiceStub(identity_channel(a.node.address, d.pki, "bank-b-teller"))
    err = rpc_error(lambda: other.GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial),
                                            timeout=30))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_braille_card_printed_at_a_branch(deployment: Deployment,
                                           embosser: EmbosserSimulator) -> None:
    d = deployment
    issued = d.branches["bank-a"].cards.IssueCard(S.IssueSecurityCardRequest(
        customer_id="A-braille-1", medium=S.SECURITY_CARD_MEDIUM_BRAILLE), timeout=60)
    assert issued.print_job.state == S.SECURITY_CARD_PRINT_COMPLETED
    holder = VirtualCardholder(embosser.last_job().data)
    cards = security_card_pb2_grpc.SecurityCardServiceStub(d.channel("bank-a-backend", 1))
    ch = cards.StartChallenge(S.StartSecurityCardChallengeRequest(serial=issued.card.serial),
                              timeout=30)
    question = Question(ch.first.code_number, tuple(p - 1 for p in ch.first.digit_positions),
                        ch.second.code_number, tuple(p - 1 for p in ch.second.digit_positions))
    assert cards.VerifyAnswer(S.VerifySecurityCardAnswerRequest(
        challenge_id=ch.challenge_id, answer=holder.answer(question)), timeout=30).accepted
    issues = [e for e in d.audit(issued.card.serial) if e.action.endswith("issue")]
    assert [e.subject for e in issues] == [terminal_name("bank-a")]


def test_a_token_registered_at_a_branch_is_asked_of_the_center(deployment: Deployment) -> None:
    d = deployment
    a = d.branches["bank-a"]
    token = process_env().init_token(f"sys-{time.monotonic_ns() % 10**8}")
    registrations = customer_pb2_grpc.BranchRegistrationServiceStub(
        d.channel("bank-a-backend", 1))
    check = C.CheckExemptionRequest(kind=C.MEDIUM_KIND_HSM_TOKEN, serial=token.serial,
                                    customer_id="A-7")
    assert not registrations.CheckExemption(check, timeout=30).exempt
    with a.login(token) as session:
        reg = a.tokens.RegisterToken(T.RegisterTokenRequest(
            session=session, customer_id="A-7", operator="kim"), timeout=30)
    answer = registrations.CheckExemption(check, timeout=30)
    assert answer.exempt and answer.outcome == C.EXEMPTION_OUTCOME_EXEMPT
    assert (answer.registration.id, answer.registration.terminal) == (reg.id, "bank-a-teller")
    entries = [e for e in d.audit(f"token:{token.serial}") if e.action == "token.register"]
    assert [(e.institution, e.subject, json.loads(e.detail_json)["operator"])
            for e in entries] == [("bank-a", terminal_name("bank-a"), "kim")]
    media = customer_pb2_grpc.CustomerServiceStub(d.channel("bank-a-backend", 0))
    held = media.ListCustomerMedia(C.ListCustomerMediaRequest(customer_id="A-7"), timeout=30)
    assert [(m.kind, m.serial, m.branch_registered) for m in held.media] == [
        (C.MEDIUM_KIND_HSM_TOKEN, token.serial, True)]


def test_bank_b_branch_learns_nothing_of_bank_a(deployment: Deployment) -> None:
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    otp = "OTP-PRIV-A-0001"
    a.otp.Enroll(otp_pb2.EnrollRequest(customer_id="A-55", serial=otp, operator_id="kim",
                                       parameters=otp_pb2.OtpParameters(
                                           kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)
    card = a.cards.IssueCard(S.IssueSecurityCardRequest(
        customer_id="A-55", medium=S.SECURITY_CARD_MEDIUM_BRAILLE), timeout=60).card.serial
    token = process_env().init_token(f"priv-{time.monotonic_ns() % 10**8}")
    with a.login(token) as session:
        a.tokens.RegisterToken(T.RegisterTokenRequest(
            session=session, customer_id="A-55", operator="kim"), timeout=30)

    unknown = {"otp": "OTP-PRIV-NONE-01",
               "card": "".join("9" if c.isdigit() else c for c in card), "token": "0" * 16,
               "customer": "A-56"}
    known = {"otp": otp, "card": card, "token": token.serial, "customer": "A-55"}
    calls: dict[str, Callable[[dict[str, str]], Any]] = {
        "OtpService.GetStatus": lambda s: b.otp.GetStatus(
            otp_pb2.GetStatusRequest(serial=s["otp"]), timeout=30),
        "OtpService.Unlock": lambda s: b.otp.Unlock(otp_pb2.UnlockRequest(
            serial=s["otp"], operator_id="lee", reason="x"), timeout=30),
        "SecurityCardService.GetCard": lambda s: b.cards.GetCard(
            S.GetSecurityCardRequest(serial=s["card"]), timeout=30),
        "SecurityCardService.GetHolder": lambda s: b.cards.GetHolder(
            S.GetSecurityCardHolderRequest(customer_id=s["customer"]), timeout=30),
        "CustomerService.ListCustomerMedia": lambda s: b.customers.ListCustomerMedia(
            C.ListCustomerMediaRequest(customer_id=s["customer"], include_ended=True),
            timeout=30),
        "BranchRegistrationService.ListRegistrations": lambda s: b.registrations
        .ListRegistrations(C.ListRegistrationsRequest(serial=s["token"], include_ended=True),
                           timeout=30),
        "BranchRegistrationService.CheckExemption": lambda s: b.registrations.CheckExemption(
            C.CheckExemptionRequest(kind=C.MEDIUM_KIND_HSM_TOKEN, serial=s["token"],
                                    customer_id=s["customer"]), timeout=30),
        "TokenService.CheckTokenExemption": lambda s: b.tokens.CheckTokenExemption(
            T.CheckTokenExemptionRequest(token_serial=s["token"],
                                         customer_id=s["customer"]), timeout=30),
    }
    for name, call in calls.items():
        seen = answer_of(lambda c=call: c(known), hide=known.values())
        fresh = answer_of(lambda c=call: c(unknown), hide=unknown.values())
        assert seen == fresh, name
        assert "bank-a" not in str(seen) and "A-55" not in str(seen), name
    # Bank A still sees its own.
    assert a.otp.GetStatus(otp_pb2.GetStatusRequest(serial=otp), timeout=30).registrations


def test_a_teller_at_a_branch_node_changes_a_customers_kind(deployment: Deployment) -> None:
    """CustomerService.ChangeCustomerKind from bank A's branch node process: the center (other
    processes, PostgreSQL) records the new kind and audits the teller; bank B's branch node
    gets for A's customer word for word the answer of an unknown one."""
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    customer = f"A-KIND-{time.monotonic_ns() % 10**8}"
    a_policy = policy_pb2_grpc.PolicyServiceStub(a.channel)
    a_policy.SetupCustomer(P.SetupCustomerRequest(
        customer_id=customer, kind=P.CUSTOMER_KIND_PERSONAL, operator_id="kim"), timeout=30)
    done = a.customers.ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id=customer, kind=P.CUSTOMER_KIND_CORPORATE, operator_id="kim",
        reason="the business incorporated"), timeout=30)
    assert (done.changed, done.previous_kind, done.customer.kind) == (
        True, P.CUSTOMER_KIND_PERSONAL, P.CUSTOMER_KIND_CORPORATE)
    with psycopg.connect(d.store_url, autocommit=True) as conn:
        rows = conn.execute("SELECT institution, kind FROM policy_customers"
                            " WHERE customer_id = %s", (customer,)).fetchall()
    assert rows == [("bank-a", "corporate")]
    # Both center nodes answer with the new kind: it is the center's, not the branch's.
    for n in range(2):
        policy = policy_pb2_grpc.PolicyServiceStub(d.channel("bank-a-backend", n))
        held = policy.GetCustomer(P.PolicyCustomerRef(customer_id=customer), timeout=30)
        assert held.kind == P.CUSTOMER_KIND_CORPORATE, n
    (entry,) = [e for e in d.audit(f"customer:{customer}") if e.action == "policy.kind_changed"]
    assert (entry.institution, entry.subject, operator(entry)) == (
        "bank-a", terminal_name("bank-a"), "kim")

    def at_b(customer_id: str) -> Callable[[], Any]:
        return lambda: b.customers.ChangeCustomerKind(C.ChangeCustomerKindRequest(
            customer_id=customer_id, kind=P.CUSTOMER_KIND_PERSONAL, operator_id="lee",
            reason="x"), timeout=30)

    unknown = f"A-KIND-NONE-{time.monotonic_ns() % 10**8}"
    seen = answer_of(at_b(customer), hide=[customer])
    fresh = answer_of(at_b(unknown), hide=[unknown])
    assert seen == fresh and seen[0] == "NOT_FOUND", (seen, fresh)
    assert "bank-a" not in str(seen)
    with psycopg.connect(d.store_url, autocommit=True) as conn:
        assert conn.execute("SELECT institution, kind FROM policy_customers"
                            " WHERE customer_id = %s", (customer,)).fetchall() == rows
    assert [e.action for e in d.audit(f"customer:{customer}")
            if e.action == "policy.kind_changed"] == ["policy.kind_changed"]


# --------------------------------------------------------------------------- center faults


def test_a_center_node_killed_while_the_branches_work(deployment: Deployment) -> None:
    """SIGKILL of the center node both branches use first, in the middle of a provisioning at
    bank A and of a run of enrollments at bank B: the provisioning is confirmed by the other
    node; every enrollment either answered (and is there, once), or answered UNAVAILABLE (and
    enrolling it again says whether it took effect), or, when the node died between its commit
    and its answer, IDEMPOTENCY_ANSWER_PENDING (it took effect); nothing is doubled."""
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    serial = 43_000_001
    a.plug(serial, DEVICE_DELAY_MS)
    provision, provisioned = in_background(lambda: a.provision(serial))
    answers: dict[str, Any] = {}
    stop = threading.Event()

    def enroll(otp: str) -> Any:
        try:
            return b.otp.Enroll(otp_pb2.EnrollRequest(
                customer_id="B-3", serial=otp, operator_id="lee",
                parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)
        except grpc.RpcError as exc:
            return exc

    def work() -> None:
        n = 0
        while not stop.is_set() or n < 12:
            otp = f"OTP-KILL-{n:04d}"
            answers[otp] = enroll(otp)
            n += 1
            time.sleep(0.05)

    worker = threading.Thread(target=work)
    worker.start()
    when_reserved(d, a, serial)
    d.centers[0].kill()  # the first url of both branches: A reserved there, B enrolls there
    joined(provision, 120)
    stop.set()
    joined(worker, 120)

    assert not isinstance(provisioned[0], grpc.RpcError), provisioned[0]
    assert provisioned[0].otp_serial == otp_serial_of(serial)
    assert holds_its_enrollment(d, a, serial)
    for otp, answer in answers.items():
        if isinstance(answer, grpc.RpcError) and (
                answer.code() == grpc.StatusCode.FAILED_PRECONDITION):
            # The node died after the commit and before storing the answer: the retry at the
            # other node says the change took effect once (docs/center.md).
            assert details_of(answer).reason == "IDEMPOTENCY_ANSWER_PENDING", (otp, answer)
        elif isinstance(answer, grpc.RpcError):
            assert answer.code() == grpc.StatusCode.UNAVAILABLE, (otp, answer)
            again = enroll(otp)  # did it take effect? enrolling again tells
            assert not isinstance(again, grpc.RpcError) or (
                again.code() == grpc.StatusCode.ALREADY_EXISTS), (otp, again)
        assert d.enrolled(otp), otp
        enrolls = [e for e in d.audit(otp) if e.action == "otp.enroll"]
        assert len(enrolls) == 1, (otp, enrolls)

    # Node 0 comes back on its port; with node 1 killed, both branches use it again.
    d.restart_center(0)
    assert wait_for(lambda: serving(d.channel("ops", 0)), timeout=30)
    d.centers[1].kill()
    serial = 43_000_002
    a.plug(serial)
    assert a.provision(serial).otp_serial == otp_serial_of(serial)
    assert holds_its_enrollment(d, a, serial)
    assert not isinstance(enroll("OTP-KILL-AFTER"), grpc.RpcError)


IDEMPOTENCY_KEY = "x-authd-idempotency-key"


def enroll_request(serial: str) -> otp_pb2.EnrollRequest:
    return otp_pb2.EnrollRequest(serial=serial, operator_id="T-0042", customer_id="A-9",
                                 parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP))


def test_a_center_node_killed_between_commit_and_answer(deployment: Deployment) -> None:
    """A change whose center node dies after its commit is retried at the other node with its
    idempotency key: it takes effect exactly once, and the teller gets the first answer."""
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]
    enrolled, lost = "IDEM-0000000001", "IDEM-0000000002"
    try:
        b.otp.Enroll(enroll_request(lost), timeout=30)
        # Node 0, both branches' first node, dies once Enroll's answer is stored and before
        # it is sent.
        d.restart_center_crashing_at(0, "OtpService.Enroll/stored")
        first = a.otp.Enroll(enroll_request(enrolled), timeout=60,
                             metadata=[(IDEMPOTENCY_KEY, "teller-op-1")])
        assert not d.centers[0].alive  # it did get the call, and died before answering
        assert first.device.serial == enrolled and len(first.generated_seed) >= 16
        assert [e.outcome for e in d.audit(enrolled) if e.action == "otp.enroll"] == [
            "enrolled"]
        # The teller's own retry with its key: the first answer again, no second enrollment.
        again = a.otp.Enroll(enroll_request(enrolled), timeout=30,
                             metadata=[(IDEMPOTENCY_KEY, "teller-op-1")])
        assert again == first
        assert len([e for e in d.audit(enrolled) if e.action == "otp.enroll"]) == 1
        # Without a key, the same request is a second enrollment: refused as such.
        err = rpc_error(lambda: a.otp.Enroll(enroll_request(enrolled), timeout=30))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        # The key with another request is refused, and names what it was used for.
        err = rpc_error(lambda: a.otp.Enroll(enroll_request("IDEM-0000000003"), timeout=30,
                                             metadata=[(IDEMPOTENCY_KEY, "teller-op-1")]))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason == "IDEMPOTENCY_KEY_REUSED"
        assert not d.enrolled("IDEM-0000000003")
        # Bank B's teller choosing the same key makes a change of its own.
        other = b.otp.Enroll(enroll_request("IDEM-0000000004"), timeout=30,
                             metadata=[(IDEMPOTENCY_KEY, "teller-op-1")])
        assert other.device.serial == "IDEM-0000000004"
        assert other.generated_seed != first.generated_seed

        # The loss report committed at node 0, which died before its answer was stored: the
        # retry at node 1 does not report it again, and says the change was made.
        d.restart_center_crashing_at(0, "OtpService.ReportLost/committed")
        err = rpc_error(lambda: b.otp.ReportLost(otp_pb2.ReportLostRequest(
            serial=lost, reason="lost on the bus"), timeout=60))
        assert not d.centers[0].alive
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason == "IDEMPOTENCY_ANSWER_PENDING"
        status = d.status(lost)
        assert status is not None and status.state == otp_pb2.DEVICE_STATE_REPORTED_LOST
        assert [e.outcome for e in d.audit(lost) if e.action == "otp.report_lost"] == [
            "reported_lost"]
    finally:
        if d.centers[0].alive:
            d.centers[0].stop()  # the next test's heal starts it without crash points


def test_with_both_center_nodes_stopped_device_work_goes_on(deployment: Deployment) -> None:
    d = deployment
    a = d.branches["bank-a"]
    token = process_env().init_token(f"down-{time.monotonic_ns() % 10**8}")
    with a.login(token) as session:
        stopped_while_logged_in(d, a, session)


def stopped_while_logged_in(d: Deployment, a: Branch, session: str) -> None:
    a.tokens.GenerateKeyPair(T.TokenGenerateKeyPairRequest(
        session=session, spec=T.TOKEN_KEY_SPEC_EC_P256, label="login", key_id=b"\x01"),
        timeout=30)
    serial = 45_000_001
    a.plug(serial)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: c.stop(), d.centers))

    center_calls: dict[str, Callable[[], Any]] = {
        "OtpService.GetStatus": lambda: a.otp.GetStatus(
            otp_pb2.GetStatusRequest(serial="OTP-DOWN-1"), timeout=30),
        "HidOtpService.ProvisionDevice": lambda: a.provision(serial),
        "TokenService.RegisterToken": lambda: a.tokens.RegisterToken(T.RegisterTokenRequest(
            session=session, customer_id="A-8", operator="kim"), timeout=30),
        "SecurityCardService.IssueCard": lambda: a.cards.IssueCard(S.IssueSecurityCardRequest(
            customer_id="A-8", medium=S.SECURITY_CARD_MEDIUM_BRAILLE), timeout=60),
        "CustomerService.ListCustomerMedia": lambda: a.customers.ListCustomerMedia(
            C.ListCustomerMediaRequest(customer_id="A-8"), timeout=30),
    }
    with ThreadPoolExecutor(len(center_calls)) as pool:
        errors = dict(zip(center_calls, pool.map(rpc_error, center_calls.values()),
                          strict=True))
    for name, err in errors.items():
        assert err.code() == grpc.StatusCode.UNAVAILABLE, name
        assert "center is unreachable" in str(err.details()), (name, err.details())
    # Device-local work goes on: the token signs, the HID device types.
    signed = a.tokens.Sign(T.TokenSignRequest(session=session, key_id=b"\x01", data=b"login"),
                           timeout=30)
    assert signed.signature
    assert a.press(serial) == ""
    # The branch's health, per service: what needs the center is NOT_SERVING, the rest is.
    assert wait_for(lambda: not any(a.serving(s) for s in CENTER_SERVICES), timeout=10)
    assert all(a.serving(s) for s in LOCAL_SERVICES)


def test_a_center_node_that_loses_its_store_is_left_for_the_other(
        deployment: Deployment) -> None:
    d = deployment
    b = d.branches["bank-b"]  # its link tries center node 0 first
    b.otp.Enroll(otp_pb2.EnrollRequest(customer_id="B-4", serial="OTP-STORE-1",
                                       operator_id="lee", parameters=otp_pb2.OtpParameters(
                                           kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)
    d.store_proxy.set(REFUSE)  # center node 0's database is gone
    assert wait_for(lambda: not serving(d.channel("ops", 0)), timeout=10)
    assert serving(d.channel("ops", 1))
    # Reads go on through node 1 at once (node 0 answers UNAVAILABLE: the read is sent on).
    for _ in range(3):
        assert b.otp.GetStatus(otp_pb2.GetStatusRequest(serial="OTP-STORE-1"),
                               timeout=30).serial == "OTP-STORE-1"
    # Changes too, once the link saw node 0 NOT_SERVING (until then node 0 answers them
    # UNAVAILABLE, having changed nothing).
    attempts: list[str] = []

    def enrolled_through_node_1() -> bool:
        otp = f"OTP-STORE-{len(attempts) + 2}"
        attempts.append(otp)
        try:
            b.otp.Enroll(otp_pb2.EnrollRequest(
                customer_id="B-4", serial=otp, operator_id="lee",
                parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            return False
        return True

    assert wait_for(enrolled_through_node_1, timeout=10, interval=0.1)
    assert [d.enrolled(otp, 1) for otp in attempts] == [False] * (len(attempts) - 1) + [True]
    d.store_proxy.set(FORWARD)
    assert wait_for(lambda: serving(d.channel("ops", 0)), timeout=15)


# --------------------------------------------------------------------------- provisioning faults


def test_provisioning_interrupted_at_each_step_leaves_nothing_half_done(
        deployment: Deployment) -> None:
    d = deployment
    a, b = d.branches["bank-a"], d.branches["bank-b"]

    # 0. Bank B's branch node dies while it programs a device: nobody confirms, the center
    # expires the reservation (checked at the end, the other steps run meanwhile).
    dying = 44_000_001
    b.plug(dying, DEVICE_DELAY_MS)
    thread, _ = in_background(lambda: b.provision(dying))
    when_reserved(d, b, dying)
    died_at = time.monotonic()
    b.node.kill()
    joined(thread, 60)

    # 1. The link is down before the reservation: nothing reaches the center, the device is
    # untouched, the branch's health says so.
    serial = 42_000_001
    a.plug(serial, DEVICE_DELAY_MS)
    a.link(REFUSE)
    err = rpc_error(lambda: a.provision(serial))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "center is unreachable" in str(err.details())
    assert wait_for(lambda: not a.serving("authd.v1.HidOtpService"), timeout=10)
    assert a.press(serial) == ""  # device-local work goes on
    a.link(FORWARD)
    assert wait_for(lambda: a.serving("authd.v1.HidOtpService"), timeout=15)
    assert d.reservation(serial) == "" and restored(d, a, serial)

    # 2. Cut while the device is programmed: the confirmation cannot be sent; the branch
    # undoes the device, and the center's reservation expires (checked at the end).
    cut = 42_000_002
    a.plug(cut, DEVICE_DELAY_MS)
    thread, out = in_background(lambda: a.provision(cut))
    when_reserved(d, a, cut)
    a.link(REFUSE)
    joined(thread, 120)
    assert isinstance(out[0], grpc.RpcError) and out[0].code() == grpc.StatusCode.UNAVAILABLE
    a.link(FORWARD)
    assert wait_for(lambda: a.serving("authd.v1.HidOtpService"), timeout=15)
    assert restored(d, a, cut)

    # 3. The confirmation's answer is lost (the center committed) or late (1.5 s each way,
    # the call times out after 2 s): the device stays programmed, and the branch settles it
    # with the center once the link is back.
    for n, (mode, delay) in enumerate(((DROP_REPLIES, 0.0), (DELAY, 1.5))):
        serial = 42_000_003 + n
        a.plug(serial, DEVICE_DELAY_MS)
        thread, out = in_background(lambda serial=serial: a.provision(serial))
        when_reserved(d, a, serial)
        a.link(mode, delay)
        joined(thread, 120)
        assert isinstance(out[0], grpc.RpcError), f"{mode}: {out[0]}"
        assert out[0].code() == grpc.StatusCode.UNAVAILABLE
        a.link(FORWARD)
        assert wait_for(lambda serial=serial: d.reservation(serial) == "confirmed", timeout=30)
        assert wait_for(lambda serial=serial: a.device(serial).provisioned, timeout=30)
        assert holds_its_enrollment(d, a, serial), mode

    # The reservations nobody confirmed expired, and nothing was enrolled for them.
    for device in (cut, dying):
        assert wait_for(lambda device=device: d.reservation(device) == "expired",
                        timeout=TTL + 30)
        assert not d.enrolled(otp_serial_of(device))
    assert time.monotonic() - died_at >= TTL - 1
    outcomes = [e.outcome for e in d.audit(otp_serial_of(dying)) if e.action == "hid.provision"]
    assert outcomes == ["expired"]
