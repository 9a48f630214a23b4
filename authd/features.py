"""The features this daemon serves. Each module defines
``register(server: grpc.aio.Server, app: App) -> list[str]`` (the full names of the services it
added) and may define ``async def close(app: App) -> None``.
"""

FEATURES: list[str] = [
    "authd.system.feature",
    "authd.otp.feature",
    "authd.hid.feature",
    "authd.security_cards.feature",
    "authd.smartcards.feature",
    "authd.tokens.feature",
]
