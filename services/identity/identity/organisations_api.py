"""gRPC translation for kaseum.identity.v1.Organisations: requests in, rules called, messages out.

Authorisation is decided by the rules (organisations.py) from the caller in the metadata.
"""

from __future__ import annotations

from typing import Any

from kaseum.identity.v1 import organisations_pb2 as pb
from kaseum.identity.v1 import organisations_pb2_grpc
from servicekit import caller
from servicekit.timestamps import to_timestamp

from .organisations import OrganisationRules, OrganisationView

SERVICE = "kaseum.identity.v1.Organisations"




def organisation_message(view: OrganisationView) -> pb.Organisation:
    org = view.organisation
    return pb.Organisation(id=org.id, name=org.name, kind=org.kind, countries=view.countries,
                           customer_organisation_ids=view.customer_organisation_ids,
                           created_at=to_timestamp(org.created_at), ticket_sharing=org.ticket_sharing,
                           size_band=org.size_band)


class OrganisationsApi(organisations_pb2_grpc.OrganisationsServicer):
    def __init__(self, rules: OrganisationRules) -> None:
        self.rules = rules

    def CreateOrganisation(self, request: pb.CreateOrganisationRequest, context: Any) -> pb.Organisation:
        return organisation_message(self.rules.create(caller.current(), request.name, request.kind,
                                                      list(request.countries)))

    def ListOrganisations(self, request: pb.ListOrganisationsRequest, context: Any) -> pb.ListOrganisationsResponse:
        page = self.rules.page(caller.current(), request.kind, request.cursor, request.page_size)
        return pb.ListOrganisationsResponse(items=[organisation_message(v) for v in page.items],
                                            next_cursor=page.next_cursor)

    def GetOrganisation(self, request: pb.GetOrganisationRequest, context: Any) -> pb.Organisation:
        return organisation_message(self.rules.get(caller.current(), request.id))

    def SetResellerCountries(self, request: pb.SetResellerCountriesRequest, context: Any) -> pb.Organisation:
        return organisation_message(self.rules.set_countries(caller.current(), request.reseller_id,
                                                             list(request.countries)))

    def AddResellerCustomer(self, request: pb.AddResellerCustomerRequest, context: Any) -> pb.ResellerCustomer:
        link = self.rules.add_customer(caller.current(), request.reseller_id, request.customer_organisation_id)
        return pb.ResellerCustomer(reseller_id=link.reseller_id,
                                   customer_organisation_id=link.customer_organisation_id,
                                   since=to_timestamp(link.since))

    def RemoveResellerCustomer(self, request: pb.RemoveResellerCustomerRequest,
                               context: Any) -> pb.RemoveResellerCustomerResponse:
        self.rules.remove_customer(caller.current(), request.reseller_id, request.customer_organisation_id)
        return pb.RemoveResellerCustomerResponse()

    def ResellerScope(self, request: pb.ResellerScopeRequest, context: Any) -> pb.ResellerScopeResponse:
        scope = self.rules.reseller_scope(caller.current(), request.reseller_account_id)
        return pb.ResellerScopeResponse(reseller_id=scope.reseller_id,
                                        customer_organisation_ids=scope.customer_organisation_ids,
                                        countries=scope.countries, as_of=to_timestamp(scope.as_of))

    def SetTicketSharing(self, request: pb.SetTicketSharingRequest, context: Any) -> pb.Organisation:
        return organisation_message(self.rules.set_ticket_sharing(caller.current(), request.organisation_id,
                                                                  request.enabled))

    def SetOrganisationSize(self, request: pb.SetOrganisationSizeRequest, context: Any) -> pb.Organisation:
        return organisation_message(self.rules.set_size_band(caller.current(), request.organisation_id,
                                                             request.size_band, request.employees))

    def OrganisationSizeBand(self, request: pb.OrganisationSizeBandRequest,
                             context: Any) -> pb.OrganisationSizeBandResponse:
        return pb.OrganisationSizeBandResponse(size_band=self.rules.size_band(caller.current(),
                                                                              request.organisation_id))
