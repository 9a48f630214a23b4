"""Registers the OTP center with the daemon; offers it to other features as
``app.services["otp_center"]``. The OTP service's health follows its verification writers."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from authd.app import App
from authd.context import Caller
from authd.otp.center import OtpCenter, VerifyResult
from authd.otp.engine import GroupCommitEngine, LoopCommitEngine
from authd.otp.servicer import OtpServicer
from authd.storage import Tx
from authd.v1 import otp_pb2, otp_pb2_grpc
from devices.errors import InvalidArgument
from devices.otp.rules import Policy

SERVICE = otp_pb2.DESCRIPTOR.services_by_name["OtpService"].full_name


def make_center(app: App) -> OtpCenter:
    c = app.config.otp
    return OtpCenter(app.secrets, app.audit, Policy(lockout_threshold=c.lockout_threshold,
                                                    drift_steps=c.drift_steps,
                                                    hotp_look_ahead=c.hotp_look_ahead))


Engine = (GroupCommitEngine[tuple[str, str, Caller], VerifyResult]
          | LoopCommitEngine[tuple[str, str, Caller], VerifyResult])


def make_engine(app: App, center: OtpCenter, *, in_loop: bool | None = None) -> Engine:
    """The configured engine; ``in_loop=False`` forces writer threads (callers without a loop)."""
    writers = app.config.otp.writers or (1 if app.db.dialect == "sqlite" else 4)

    def handle(tx: Tx, job: tuple[str, str, Caller]) -> VerifyResult:
        serial, code, caller = job
        return center.verify(tx, serial=serial, code=code, caller=caller)

    kind = app.config.otp.engine
    if kind not in ("thread", "loop"):
        raise InvalidArgument("[otp] engine must be 'thread' or 'loop'")
    if kind == "loop" and app.db.dialect != "sqlite":
        raise InvalidArgument("[otp] engine = 'loop' is for SQLite; PostgreSQL uses 'thread'")
    if (in_loop if in_loop is not None else kind == "loop"):
        return LoopCommitEngine(app.db, handle, batch_max=app.config.otp.batch_max)
    return GroupCommitEngine(app.db, handle, batch_max=app.config.otp.batch_max,
                             writers=writers)


def register(server: grpc.aio.Server, app: App) -> list[str]:
    center = make_center(app)
    engine = make_engine(app, center)
    app.services["otp_center"] = center
    app.services["otp_engine"] = engine
    otp_pb2_grpc.add_OtpServiceServicer_to_server(OtpServicer(app, center, engine), server)
    return [SERVICE]


async def start(app: App, running: Any) -> None:
    """Health: SERVING while every verification writer runs, NOT_SERVING while one is down
    (its devices cannot be verified on this node)."""
    engine: Engine = app.services["otp_engine"]
    health = running.health
    loop = asyncio.get_running_loop()

    async def update() -> None:
        await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING if engine.serving
                         else health_pb2.HealthCheckResponse.NOT_SERVING)

    def changed() -> None:  # from any thread
        try:
            loop.call_soon_threadsafe(lambda: loop.create_task(update()))
        except RuntimeError:
            pass  # the loop is closed: the server is gone

    engine.on_change(changed)
    await update()


async def close(app: App) -> None:
    engine = app.services.get("otp_engine")
    if engine is not None:
        await app.run_blocking(engine.close)
