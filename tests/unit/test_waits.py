"""The tests' waits fail the test when their condition is not reached, naming it."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import joined, wait_for


def test_a_condition_that_holds_ends_the_wait() -> None:
    calls = iter([False, False, True])
    assert wait_for(lambda: next(calls), timeout=5, interval=0.001) is True


def test_a_condition_that_never_holds_fails_naming_where_it_was_written() -> None:
    with pytest.raises(AssertionError, match=r"the condition \(test_waits\.py:\d+\) did not "
                                             r"hold within 0\.05 s"):
        wait_for(lambda: False, timeout=0.05, interval=0.01)


def test_a_thread_still_running_after_its_join_fails_the_test() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="held", daemon=True)
    thread.start()
    try:
        with pytest.raises(AssertionError, match=r"thread held still running after 0\.05 s"):
            joined(thread, 0.05)
    finally:
        release.set()
    joined(thread, 10)
