"""Registers ``authd.v1.SystemService`` (on every node, whatever its roles) and runs the audit
sealer: every node (both roles keep a store) chains its store's committed audit records into
signed blocks (authd/audit/chain.py); on PostgreSQL the sealers of all center nodes take turns.
"""

from __future__ import annotations

from authd.audit.chain import Sealer, SealerThread
from authd.audit.signing import open_signer
from authd.features import Feature, Service
from authd.system.servicer import SystemServicer
from authd.system.settings import SystemSettings
from authd.v1 import system_pb2, system_pb2_grpc


class SystemFeature(Feature[SystemSettings]):
    name = "system"
    sealer: SealerThread | None = None

    def services(self) -> list[Service]:
        return [Service.of(system_pb2.DESCRIPTOR, "SystemService",
                           system_pb2_grpc.add_SystemServiceServicer_to_server,
                           SystemServicer(self.app))]

    async def start(self) -> None:
        """Start sealing this store's audit records."""
        config = self.app.config
        signer = await self.app.run_blocking(open_signer, config, config.audit)
        self.sealer = SealerThread(Sealer(self.app.db, signer, config.audit,
                                          witness=config.audit.witness_path(config)))
        self.sealer.start()

    async def stop(self) -> None:
        """A last sealing round, then the signing key's session is released."""
        if self.sealer is not None:
            await self.app.run_blocking(self.sealer.stop)
            self.sealer.sealer.signer.close()
            self.sealer = None


FEATURE = SystemFeature
