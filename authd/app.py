"""The application object: configuration, store, secrets and audit, shared by all features."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from authd.audit import AuditLog
from authd.config import Config
from authd.features import Feature
from authd.health import HealthBoard
from authd.secrets import SecretBox
from authd.storage import Database
from authd.storage.database import STORE_UNAVAILABLE
from devices.errors import Unreachable, WrongState

T = TypeVar("T")
# Beyond the store's timeout, how long a store call waits before it answers anyway: the
# time to cut an overdue transaction (authd/storage/deadline.py) and hear back.
STORE_GRACE = 2.0
F = TypeVar("F", bound=Feature[Any])


@dataclass
class App:
    config: Config
    db: Database
    secrets: SecretBox
    audit: AuditLog
    # Threads for device work (tokens, cards, HID, embossers) and, apart, for store work: a
    # store that hangs can fill its own threads but never delays a call that needs no store.
    executor: ThreadPoolExecutor
    store_executor: ThreadPoolExecutor
    health: HealthBoard = field(default_factory=HealthBoard)
    # The features this node serves, in the order they were built.
    features: list[Feature[Any]] = field(default_factory=list)
    # Full names of the gRPC services this daemon serves (filled by the server).
    service_names: list[str] = field(default_factory=list)
    # Those whose calls need the store (their health follows it: authd/storage/watch.py).
    store_services: list[str] = field(default_factory=list)

    def feature(self, cls: type[F]) -> F | None:
        """The built feature of class ``cls`` (None when this node does not serve it)."""
        for feature in self.features:
            if isinstance(feature, cls):
                return feature
        return None

    def require(self, cls: type[F]) -> F:
        """The built feature of class ``cls``; an error naming it when this node lacks it."""
        found = self.feature(cls)
        if found is None:
            raise WrongState(f"this node does not serve the {cls.name} feature")
        return found

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def close(self) -> None:
        """Release the worker threads, the store and the key-encryption-key token."""
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.store_executor.shutdown(wait=True, cancel_futures=True)
        self.db.close()
        self.secrets.close()

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking device work off the event loop, keeping the caller context (work
        that also writes the store bounds its transactions with the store's timeout)."""
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def run_store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run store work on the store's threads, keeping the caller context. It answers
        within the store's timeout (plus the time to cut an overdue transaction) even when
        every store thread is held: ``Unreachable`` then, and work not started yet is
        dropped."""
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(self.store_executor, call)
        timeout = self.db.timeout
        if timeout is None:
            return await future
        try:
            return await asyncio.wait_for(future, timeout + STORE_GRACE)
        except TimeoutError:
            raise Unreachable(f"the store is unavailable: it did not answer within "
                              f"{timeout:g} s", reason=STORE_UNAVAILABLE) from None
