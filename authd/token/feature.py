"""Registers ``authd.v1.TokenService`` (HSM security tokens over PKCS#11)."""

from __future__ import annotations

from typing import Any

import grpc

from authd.app import App
from authd.token.service import TokenService
from authd.token.servicer import TokenServicer
from authd.token.settings import load_settings
from authd.v1 import token_pb2, token_pb2_grpc

SERVICE_KEY = "token"


def register(server: grpc.aio.Server, app: App) -> list[str]:
    service = TokenService.create(app, load_settings(app.config))
    app.services[SERVICE_KEY] = service
    token_pb2_grpc.add_TokenServiceServicer_to_server(TokenServicer(app, service), server)
    return [token_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name]


async def start(app: App, running: Any) -> None:
    service: TokenService = app.services[SERVICE_KEY]
    await app.run_blocking(service.start)


async def close(app: App) -> None:
    service: TokenService | None = app.services.get(SERVICE_KEY)
    if service is not None:
        await app.run_blocking(service.close)
