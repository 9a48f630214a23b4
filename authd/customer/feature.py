"""The customer feature (center role): ``authd.v1.CustomerService`` (which media a customer
holds) and ``authd.v1.BranchRegistrationService`` (tokens and smartcards registered at
branches). Branch features record their registrations through :func:`registrations_of`: in
process here, over the link on a branch-only node (``authd/customer/remote.py``)."""

from __future__ import annotations

from authd.app import App
from authd.customer.models import MediumKind
from authd.customer.registrations import BranchRegistrations, CenterRegistrations
from authd.customer.service import CustomerService
from authd.customer.servicer import BranchRegistrationServicer, CustomerServicer
from authd.customer.settings import CustomerSettings
from authd.features import Feature, Service
from authd.otp.settings import OtpSettings
from authd.security_card.settings import SecurityCardSettings
from authd.smartcard import repository as smartcard_repo
from authd.token import repository as token_repo
from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from devices.errors import Unreachable

ROWS = {MediumKind.HSM_TOKEN: token_repo.REGISTRATIONS,
        MediumKind.SMARTCARD: smartcard_repo.REGISTRATIONS}


class CustomerFeature(Feature[CustomerSettings]):
    name = "customer"
    uses_store = True

    def __init__(self, app: App, settings: CustomerSettings) -> None:
        super().__init__(app, settings)
        self.registrations = CenterRegistrations(app.db, app.audit, ROWS)
        self.service = CustomerService(
            app.db, ROWS, otp_lockout=app.config.settings(OtpSettings).lockout_threshold,
            card_max_failures=app.config.settings(SecurityCardSettings).max_failures)

    def services(self) -> list[Service]:
        return [
            Service.of(pb.DESCRIPTOR, "CustomerService",
                       pb_grpc.add_CustomerServiceServicer_to_server,
                       CustomerServicer(self.app, self.service)),
            Service.of(pb.DESCRIPTOR, "BranchRegistrationService",
                       pb_grpc.add_BranchRegistrationServiceServicer_to_server,
                       BranchRegistrationServicer(self.app, self.registrations)),
        ]


def registrations_of(app: App) -> BranchRegistrations:
    """Where this node records branch registrations: the center's logic in process when the
    node serves the center role too, the center over the link on a branch-only node."""
    feature = app.feature(CustomerFeature)
    if feature is not None:
        return feature.registrations
    from authd.center.feature import link_of
    from authd.customer.remote import RemoteRegistrations

    link = link_of(app)
    if link is not None:
        return RemoteRegistrations(link)
    raise Unreachable("no center to record the registration at: this node does not serve "
                      "the center role and has no link to a center")


FEATURE = CustomerFeature
