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
from authd.secrets import SecretBox
from authd.storage import Database

T = TypeVar("T")


@dataclass
class App:
    config: Config
    db: Database
    secrets: SecretBox
    audit: AuditLog
    executor: ThreadPoolExecutor
    # Objects a feature offers to others (e.g. "otp_center"), set by its register().
    services: dict[str, Any] = field(default_factory=dict)
    # Full names of the gRPC services this daemon serves (filled by the server).
    service_names: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def close(self) -> None:
        """Release the worker threads, the store and the key-encryption-key token."""
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.db.close()
        self.secrets.close()

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking device or store work off the event loop, keeping the caller context."""
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)
