"""An executor that runs nothing until told, and answers collected by call number: for the
linked-call tests, where what waits together is what is checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authd.context import Caller, Role

TELLER = Caller("bank-a", Role.BRANCH, "teller-1")

Answer = Callable[[Any, BaseException | None], None]


class HeldExecutor:
    """Runs nothing until told: the work submitted meanwhile waits together."""

    def __init__(self) -> None:
        self.submitted: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.submitted.append(lambda: fn(*args))

    def run(self) -> None:
        while self.submitted:
            self.submitted.pop(0)()


class Answers(dict[int, tuple[Any, BaseException | None]]):
    """(response, error) by call number; ``for_call(n)`` is call n's answer callback."""

    def for_call(self, n: int) -> Answer:
        return lambda response, error: self.__setitem__(n, (response, error))
