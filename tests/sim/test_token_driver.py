"""drivers.pkcs11 against real SoftHSM2 tokens (python-pkcs11 underneath)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from drivers.pkcs11 import (
    AlreadyLoggedIn,
    ModuleSet,
    ObjectMissing,
    PinIncorrect,
    Pkcs11Module,
    Pkcs11TokenSession,
    Rescan,
    TokenAbsent,
    TokenEvent,
    TokenEventKind,
    TokenWatcher,
)
from drivers.pkcs11.session import COPY_RUN
from simulators.token.softhsm import SoftHsmEnvironment, SoftHsmToken, process_env
from tests.conftest import wait_for


@pytest.fixture
def env() -> SoftHsmEnvironment:
    return process_env()


@pytest.fixture
def token(env: SoftHsmEnvironment) -> SoftHsmToken:
    return env.init_token(f"drv-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def module(env: SoftHsmEnvironment, token: SoftHsmToken) -> Iterator[Pkcs11Module]:
    m = Pkcs11Module(env.module, rescan_interval=0.0)
    yield m
    m.close()


def test_softhsm_module_rescans_by_reinitializing_a_private_instance(module: Pkcs11Module) -> None:
    assert module.rescan_mode is Rescan.REINITIALIZE
    assert module.manufacturer.startswith("SoftHSM")


def test_lists_token_with_label_serial_and_flags(module: Pkcs11Module, token: SoftHsmToken) -> None:
    found = {t.serial: t for t in module.tokens()}
    assert token.serial in found
    info = found[token.serial]
    assert info.label == token.label
    assert info.manufacturer == "SoftHSM project"
    assert info.login_required
    assert not info.pin_state.locked
    assert not info.logged_in


def test_several_modules_at_once(env: SoftHsmEnvironment, token: SoftHsmToken) -> None:
    a = Pkcs11Module(env.module)
    b = Pkcs11Module(env.module)
    try:
        both = ModuleSet([a, b])
        m, info = both.find(token.serial)
        assert info.serial == token.serial and m in (a, b)
        assert [t.serial for t in both.tokens()].count(token.serial) == 2
    finally:
        a.close()
        b.close()


def test_wrong_pin_is_reported_with_pin_state_and_no_pin_in_message(
    module: Pkcs11Module, token: SoftHsmToken
) -> None:
    with pytest.raises(PinIncorrect) as err:
        module.login(token.serial, "999999")
    assert "999999" not in str(err.value)
    assert token.label in str(err.value)
    assert err.value.pin_state.count_low  # SoftHSM2 raises CKF_USER_PIN_COUNT_LOW
    assert err.value.attempts_remaining is None  # SoftHSM2 never reports final try / lock
    assert not module.is_logged_in(token.serial)


def test_login_logout_and_single_login(module: Pkcs11Module, token: SoftHsmToken) -> None:
    info = module.login(token.serial, token.pin)
    assert info.logged_in and module.is_logged_in(token.serial)
    with pytest.raises(AlreadyLoggedIn):
        module.login(token.serial, token.pin)
    module.logout(token.serial)
    assert not module.is_logged_in(token.serial)
    module.logout(token.serial)  # idempotent


def test_absent_token_raises_token_absent(module: Pkcs11Module) -> None:
    with pytest.raises(TokenAbsent, match="not present"):
        module.token("0000000000000000")
    with pytest.raises(TokenAbsent):
        module.login("0000000000000000", "123456")


def test_unplug_and_plug_publish_events_after_current_state(
    env: SoftHsmEnvironment, module: Pkcs11Module, token: SoftHsmToken
) -> None:
    watcher = TokenWatcher(ModuleSet([module]), interval=10)
    seen: list[tuple[TokenEventKind, str]] = []
    unsubscribe = watcher.subscribe(lambda e: seen.append((e.kind, e.token.serial)))
    assert (TokenEventKind.PRESENT, token.serial) in seen
    seen.clear()
    env.unplug(token)
    try:
        watcher.poll()
        assert (TokenEventKind.REMOVED, token.serial) in seen
        with pytest.raises(TokenAbsent):
            module.token(token.serial)
    finally:
        env.plug(token)
    watcher.poll()
    assert (TokenEventKind.INSERTED, token.serial) in seen
    assert module.token(token.serial).label == token.label
    unsubscribe()


def test_a_new_watcher_gets_the_tokens_as_they_are_now(
    module: Pkcs11Module, token: SoftHsmToken
) -> None:
    """A subscriber's PRESENT events tell the login state at the time it subscribes, not at
    the last poll (a listing taken during a login that ended since)."""
    watcher = TokenWatcher(ModuleSet([module]), interval=10)
    states: list[bool] = []

    def listener(event: TokenEvent) -> None:
        if event.token.serial == token.serial:
            states.append(event.token.logged_in)

    watcher.subscribe(listener)()
    module.login(token.serial, token.pin)
    try:
        watcher.subscribe(listener)()
    finally:
        module.logout(token.serial)
    watcher.subscribe(listener)()
    assert states == [False, True, False]


def test_new_token_appears_after_rescan(env: SoftHsmEnvironment, module: Pkcs11Module) -> None:
    module.tokens()
    fresh = env.init_token(f"drv-new-{uuid.uuid4().hex[:6]}")
    assert fresh.serial in {t.serial for t in module.tokens()}


def test_a_token_plugged_in_is_found_while_another_thread_is_in_the_module(
    env: SoftHsmEnvironment, module: Pkcs11Module, token: SoftHsmToken
) -> None:
    """The daemon polls its modules (a listing holds a lease on one) while a teller logs in
    on a token just plugged in: the lookup's rescan waits for the call in flight to end
    instead of answering that the token is not there."""
    module.tokens()
    fresh = env.init_token(f"drv-busy-{uuid.uuid4().hex[:6]}")
    holding, looked_up = threading.Event(), threading.Event()

    def hold_a_lease() -> None:
        with module.session(token.serial):
            holding.set()
            looked_up.wait(1.0)  # released sooner only when the lookup answered already

    holder = threading.Thread(target=hold_a_lease)
    holder.start()
    try:
        assert holding.wait(30)
        found, info = ModuleSet([module]).find(fresh.serial)
    finally:
        looked_up.set()
        holder.join(30)
    assert not holder.is_alive()
    assert found is module and info.label == fresh.label


def test_no_rescan_while_logged_in_keeps_the_login(
    env: SoftHsmEnvironment, module: Pkcs11Module, token: SoftHsmToken
) -> None:
    module.login(token.serial, token.pin)
    try:
        assert not module.rescan()
        assert module.is_logged_in(token.serial)
    finally:
        module.logout(token.serial)
    assert module.rescan()


class SteppedClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stepped() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def capped(env: SoftHsmEnvironment, token: SoftHsmToken,
           stepped: SteppedClock) -> Iterator[Pkcs11Module]:
    m = Pkcs11Module(env.module, rescan_interval=1.0, clock=stepped)
    yield m
    m.close()


def test_lookups_of_unknown_serials_reinitialize_at_most_once_per_interval(
    capped: Pkcs11Module, stepped: SteppedClock, token: SoftHsmToken
) -> None:
    """A caller asking for serials nobody has, in a loop, re-initializes the module once per
    rescan_interval, not once per lookup (each re-initialization ends every session)."""
    modules = ModuleSet([capped])
    for round_ in range(3):
        for i in range(20):
            with pytest.raises(TokenAbsent):
                modules.find(f"nobody-{round_}-{i}")
            stepped.now += 0.04  # 20 lookups span 0.8 s: within one interval
        assert capped.reinitializations == round_ + 1
        stepped.now += 1.0
    found, info = modules.find(token.serial)  # a token known all along still answers
    assert found is capped and info.serial == token.serial


def test_a_token_made_after_a_lookup_is_found_once_the_interval_passed(
    env: SoftHsmEnvironment, capped: Pkcs11Module, stepped: SteppedClock
) -> None:
    modules = ModuleSet([capped])
    with pytest.raises(TokenAbsent):
        modules.find("nobody-here")
    fresh = env.init_token(f"drv-capped-{uuid.uuid4().hex[:6]}")
    stepped.now += 0.5
    with pytest.raises(TokenAbsent):  # answered from the last scan, no re-initialization
        modules.find(fresh.serial)
    assert capped.reinitializations == 1
    stepped.now += 0.5
    found, info = modules.find(fresh.serial)
    assert found is capped and info.label == fresh.label
    assert capped.reinitializations == 2


def test_listings_reinitialize_at_most_once_per_interval_and_never_answer_from_before(
    env: SoftHsmEnvironment, capped: Pkcs11Module, stepped: SteppedClock, token: SoftHsmToken
) -> None:
    """Listings (ListTokens) in a loop re-initialize the module once per rescan_interval, not
    once each (each re-initialization ends every session); a listing within the interval
    waits for the next one instead of answering from an older scan, which would show a token
    initialized again with its old PIN."""
    assert token.serial in {t.serial for t in capped.tokens(fresh=True)}
    assert capped.reinitializations == 1
    again = env.reinitialize(token, pin="135790")
    with ThreadPoolExecutor(20) as pool:
        listings = [pool.submit(capped.tokens, True) for _ in range(20)]
        assert wait_for(lambda: capped.listings_waiting == 20, timeout=30)
        assert capped.reinitializations == 1  # none within the interval
        stepped.now += 1.0  # the waiting listings see it at their wait's end (1 s at most)
        answers = [f.result(timeout=30) for f in listings]
    assert capped.reinitializations == 2  # one for all twenty
    assert all(again.serial in {t.serial for t in a} for a in answers)
    capped.login(again.serial, again.pin)  # the new initialization's PIN: no old state
    capped.logout(again.serial)


def test_a_listing_while_a_user_is_logged_in_answers_at_once(
    capped: Pkcs11Module, stepped: SteppedClock, token: SoftHsmToken
) -> None:
    """Nothing re-initializes the module while a user is logged in, so a listing within the
    interval of the last re-initialization answers at once instead of waiting for the
    interval (the clock here does not move by itself: it would wait until it is moved)."""
    assert token.serial in {t.serial for t in capped.tokens(fresh=True)}
    assert capped.reinitializations == 1
    capped.login(token.serial, token.pin)
    try:
        with ThreadPoolExecutor(1) as pool:
            listing = pool.submit(capped.tokens, True)
            try:
                answer = listing.result(timeout=10)
            finally:
                stepped.now += 1.0  # a listing still waiting ends
        assert token.serial in {t.serial for t in answer}
        assert capped.reinitializations == 1 and capped.is_logged_in(token.serial)
    finally:
        capped.logout(token.serial)


def test_unplug_while_logged_in_drops_the_login(
    env: SoftHsmEnvironment, module: Pkcs11Module, token: SoftHsmToken
) -> None:
    module.login(token.serial, token.pin)
    env.unplug(token)
    try:
        module.tokens()
        assert not module.is_logged_in(token.serial)
    finally:
        env.plug(token)


def test_session_pool_is_safe_across_threads(module: Pkcs11Module, token: SoftHsmToken) -> None:
    module.login(token.serial, token.pin)
    session = Pkcs11TokenSession(module, token.serial, token.label)
    session.generate_key_pair(
        3, b"\x01\x02", "pool", ec_params=bytes.fromhex("06082a8648ce3d030107")
    )
    errors: list[BaseException] = []
    digest = bytes(32)

    def work() -> None:
        try:
            for _ in range(50):
                assert len(session.sign(b"\x01\x02", 0x1041, digest)) == 64
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    module.logout(token.serial)


def _session_keys(module: Pkcs11Module, serial: str, key_id: bytes) -> int:
    """How many session-object (CKA_TOKEN false) private keys with ``key_id`` exist now."""
    from pkcs11 import Attribute, ObjectClass

    with module.session(serial) as pooled:
        return len(list(pooled.session.get_objects({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id,
            Attribute.TOKEN: False})))


def test_signs_with_a_session_copy_of_the_key_that_ends_with_the_key_and_the_login(
    module: Pkcs11Module, token: SoftHsmToken
) -> None:
    # SoftHSM2 checks a token object's file at each use; a session copy signs without that.
    module.login(token.serial, token.pin)
    session = Pkcs11TokenSession(module, token.serial, token.label)
    key_id = b"\x0c\x01"
    session.generate_key_pair(3, key_id, "copy", ec_params=bytes.fromhex("06082a8648ce3d030107"))
    run = [bytes(32)] * COPY_RUN  # a single signature signs with the token object itself
    out: list[bytes] = []
    session.sign_many(key_id, 0x1041, run, None, out)
    session.sign_many(key_id, 0x1041, run, None, out)
    assert [len(s) for s in out] == [64] * 2 * COPY_RUN
    assert _session_keys(module, token.serial, key_id) == 1  # one copy, reused
    # Lookups see the token's own objects only.
    assert len(session.find_objects(3, key_id)) == 1

    # A logout ends the copy; signing after a new login makes a new one.
    module.logout(token.serial)
    module.login(token.serial, token.pin)
    assert _session_keys(module, token.serial, key_id) == 0
    session.sign_many(key_id, 0x1041, run, None, out)
    assert _session_keys(module, token.serial, key_id) == 1

    # Deleting the key destroys its copies: nothing signs with it afterwards.
    assert session.destroy_objects(key_id) == 2
    assert _session_keys(module, token.serial, key_id) == 0
    with pytest.raises(ObjectMissing):
        session.sign_many(key_id, 0x1041, run, None, out)
    module.logout(token.serial)


def test_a_run_signed_on_a_session_copy_stops_when_the_token_is_removed(
    env: SoftHsmEnvironment, module: Pkcs11Module, token: SoftHsmToken
) -> None:
    module.login(token.serial, token.pin)
    session = Pkcs11TokenSession(module, token.serial, token.label)
    key_id = b"\x0c\x02"
    session.generate_key_pair(3, key_id, "gone", ec_params=bytes.fromhex("06082a8648ce3d030107"))
    run = [bytes(32)] * COPY_RUN
    out: list[bytes] = []
    session.sign_many(key_id, 0x1041, run, None, out)
    assert _session_keys(module, token.serial, key_id) == 1
    env.unplug(token)
    try:
        with pytest.raises(TokenAbsent):  # the copy would sign on; the token is gone
            session.sign_many(key_id, 0x1041, run, None, out)
        assert len(out) == COPY_RUN
    finally:
        env.plug(token)
