"""The HSM security-token feature: PKCS#11 modules on this branch host and
``authd.v1.TokenService``."""

from __future__ import annotations

from authd.app import App
from authd.features import Feature, Service
from authd.token.service import TokenService
from authd.token.servicer import TokenServicer
from authd.token.settings import TokenSettings
from authd.v1 import token_pb2, token_pb2_grpc


class TokenFeature(Feature[TokenSettings]):
    name = "token"

    def __init__(self, app: App, settings: TokenSettings) -> None:
        super().__init__(app, settings.effective(app.config))
        self.service = TokenService.create(app, self.settings)

    def services(self) -> list[Service]:
        return [Service.of(token_pb2.DESCRIPTOR, "TokenService",
                           token_pb2_grpc.add_TokenServiceServicer_to_server,
                           TokenServicer(self.app, self.service))]

    async def start(self) -> None:
        await self.app.run_blocking(self.service.start)

    async def stop(self) -> None:
        await self.app.run_blocking(self.service.close)


FEATURE = TokenFeature
