"""``authd.v1.CustomerService`` and ``authd.v1.BranchRegistrationService``: the caller, the
input checks, conversion; the logic is in ``service.py`` and ``registrations.py``."""

from __future__ import annotations

import grpc

from authd import validate
from authd.app import App
from authd.context import Role, require_role
from authd.customer import convert
from authd.customer.models import MediumKind
from authd.customer.registrations import CenterRegistrations, check_serial
from authd.customer.service import CustomerService
from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from devices.errors import BadRequest

ASKERS = (Role.BACKEND, Role.BRANCH)
Ctx = grpc.aio.ServicerContext


class CustomerServicer(pb_grpc.CustomerServiceServicer):
    def __init__(self, app: App, service: CustomerService) -> None:
        self.app = app
        self.service = service

    async def ListCustomerMedia(self, request: pb.ListCustomerMediaRequest,
                                context: Ctx) -> pb.ListCustomerMediaResponse:
        caller = require_role(*ASKERS)
        customer_id = validate.customer_ref(request.customer_id)
        media = await self.app.run_store(self.service.media, caller, customer_id,
                                         include_ended=request.include_ended)
        return pb.ListCustomerMediaResponse(customer_id=customer_id,
                                            media=[convert.medium_to_pb(m) for m in media])

    async def ChangeCustomerKind(self, request: pb.ChangeCustomerKindRequest,
                                 context: Ctx) -> pb.CustomerKindChange:
        """The kind is the transfer policy's record of the customer (``PolicyService``'s
        setup); the change is its logic, called in process (the policy needs this feature,
        so it is looked up here, not imported at the top)."""
        from authd.policy import convert as policy_convert
        from authd.policy.feature import PolicyFeature
        from devices.policy.grades import CustomerKind

        caller = require_role(Role.BRANCH)
        customer_id = validate.customer_ref(request.customer_id)
        kind = policy_convert.KIND.from_pb(request.kind)
        operator = validate.text(request.operator_id, "operator_id", required=True,
                                 max_length=64)
        reason = validate.text(request.reason, "reason")
        if request.master_administrator and kind is not CustomerKind.CORPORATE:
            raise BadRequest("master_administrator is for a change to corporate (the master "
                             "administrator's other institutions' OTP devices)",
                             field="master_administrator")
        policy = self.app.require(PolicyFeature).service
        done = await self.app.run_store(
            policy.change_kind, caller, customer_id, kind, operator,
            master_administrator=request.master_administrator, reason=reason)
        assert done.view is not None
        return pb.CustomerKindChange(
            customer_id=customer_id, kind=policy_convert.KIND.to_pb(done.kind),
            previous_kind=policy_convert.KIND.to_pb(done.previous), changed=done.changed,
            foreign_otps_by_master=done.foreign_otps_by_master,
            limits_lowered=done.limits_lowered,
            customer=policy_convert.customer_to_pb(done.view))


class BranchRegistrationServicer(pb_grpc.BranchRegistrationServiceServicer):
    def __init__(self, app: App, registrations: CenterRegistrations) -> None:
        self.app = app
        self.registrations = registrations

    async def RegisterMedium(self, request: pb.RegisterMediumRequest,
                             context: Ctx) -> pb.BranchRegistration:
        caller = require_role(Role.BRANCH)
        kind = convert.held_kind_from_pb(request.kind)
        check_serial(request.serial)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator_id, "operator_id", required=True)
        terminal = validate.text(request.terminal, "terminal")
        reg = await self.app.run_store(
            self.registrations.register, caller, kind, request.serial, customer_id,
            terminal=terminal, operator=operator, public_key=request.public_key)
        return convert.registration_to_pb(reg)

    async def DeregisterMedium(self, request: pb.DeregisterMediumRequest,
                               context: Ctx) -> pb.BranchRegistration:
        caller = require_role(Role.BRANCH)
        kind = convert.held_kind_from_pb(request.kind)
        check_serial(request.serial)
        customer_id = validate.customer_ref(request.customer_id)
        operator = validate.text(request.operator_id, "operator_id", required=True)
        reason = validate.text(request.reason, "reason")
        reg = await self.app.run_store(
            self.registrations.deregister, caller, kind, request.serial, customer_id,
            operator=operator, reason=reason)
        return convert.registration_to_pb(reg)

    async def ListRegistrations(self, request: pb.ListRegistrationsRequest,
                                context: Ctx) -> pb.ListRegistrationsResponse:
        caller = require_role(*ASKERS)
        kind = convert.kind_from_pb(request.kind)
        if request.serial:
            check_serial(request.serial)
        if request.customer_id:
            validate.customer_ref(request.customer_id)
        found = await self.app.run_store(
            self.registrations.registrations, caller, kind, serial=request.serial,
            customer_id=request.customer_id, include_ended=request.include_ended)
        return pb.ListRegistrationsResponse(
            registrations=[convert.registration_to_pb(r) for r in found])

    async def CheckExemption(self, request: pb.CheckExemptionRequest,
                             context: Ctx) -> pb.CheckExemptionResponse:
        caller = require_role(*ASKERS)
        kind = convert.held_kind_from_pb(request.kind, MediumKind.HSM_TOKEN)
        check_serial(request.serial)
        customer_id = validate.customer_ref(request.customer_id)
        exemption = await self.app.run_store(
            self.registrations.exemption, caller, kind, request.serial, customer_id)
        return convert.exemption_to_pb(exemption)
