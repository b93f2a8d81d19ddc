"""Administration: organisations and reseller relationships (section 5.1.1).

The identity service decides again from the caller's token: the role check here only
answers early.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from kaseum.identity.v1 import organisations_pb2 as pb
from spectree import Response as Resp

from ..auth import backends, require_role
from ..convert import rfc3339
from ..openapi import BEARER, spec
from ..schemas import (
    CountriesBody,
    ErrorOut,
    OrganisationBody,
    OrganisationOut,
    OrganisationPage,
    OrganisationQuery,
    OrganisationSizeBody,
    ResellerCustomerBody,
    ResellerCustomerOut,
    TicketSharingBody,
)

bp = Blueprint("organisations", __name__)
BASE = "/api/v1/admin/organisations"


def organisation(o: pb.Organisation) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "kind": o.kind, "countries": list(o.countries),
            "customer_organisation_ids": list(o.customer_organisation_ids), "created_at": rfc3339(o.created_at),
            "ticket_sharing": o.ticket_sharing, "size_band": o.size_band}


@bp.post(BASE)
@spec.validate(json=OrganisationBody, resp=Resp(HTTP_201=OrganisationOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                                HTTP_409=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def create_organisation(json: OrganisationBody) -> tuple[dict[str, Any], int]:
    caller = require_role("admin")
    created = backends().organisations.CreateOrganisation(
        pb.CreateOrganisationRequest(name=json.name, kind=json.kind, countries=json.countries),
        metadata=caller.metadata)
    return organisation(created), 201


@bp.get(BASE)
@spec.validate(query=OrganisationQuery, resp=Resp(HTTP_200=OrganisationPage, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                                  HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def list_organisations(query: OrganisationQuery) -> dict[str, Any]:
    caller = require_role("admin")
    page = backends().organisations.ListOrganisations(
        pb.ListOrganisationsRequest(kind=query.kind, cursor=query.cursor), metadata=caller.metadata)
    return {"items": [organisation(o) for o in page.items], "next_cursor": page.next_cursor or None}


@bp.get(f"{BASE}/<organisation_id>")
@spec.validate(resp=Resp(HTTP_200=OrganisationOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut),
               tags=["admin"], security=BEARER)
def get_organisation(organisation_id: str) -> dict[str, Any]:
    caller = require_role("admin")
    found = backends().organisations.GetOrganisation(pb.GetOrganisationRequest(id=organisation_id),
                                                     metadata=caller.metadata)
    return organisation(found)


@bp.put(f"{BASE}/<organisation_id>/countries")
@spec.validate(json=CountriesBody, resp=Resp(HTTP_200=OrganisationOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                             HTTP_404=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def set_countries(organisation_id: str, json: CountriesBody) -> dict[str, Any]:
    caller = require_role("admin")
    updated = backends().organisations.SetResellerCountries(
        pb.SetResellerCountriesRequest(reseller_id=organisation_id, countries=json.countries),
        metadata=caller.metadata)
    return organisation(updated)


@bp.put(f"{BASE}/<organisation_id>/ticket-sharing")
@spec.validate(json=TicketSharingBody, resp=Resp(HTTP_200=OrganisationOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                                 HTTP_404=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def set_ticket_sharing(organisation_id: str, json: TicketSharingBody) -> dict[str, Any]:
    """Let a customer organisation's members see each other's tickets (off by default)."""
    caller = require_role("admin")
    updated = backends().organisations.SetTicketSharing(
        pb.SetTicketSharingRequest(organisation_id=organisation_id, enabled=json.enabled), metadata=caller.metadata)
    return organisation(updated)


@bp.put(f"{BASE}/<organisation_id>/size")
@spec.validate(json=OrganisationSizeBody, resp=Resp(HTTP_200=OrganisationOut, HTTP_401=ErrorOut, HTTP_403=ErrorOut,
                                                    HTTP_404=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def set_size(organisation_id: str, json: OrganisationSizeBody) -> dict[str, Any]:
    """Set a customer organisation's size band (usage statistics' coarse dimension), or clear it."""
    caller = require_role("admin")
    updated = backends().organisations.SetOrganisationSize(
        pb.SetOrganisationSizeRequest(organisation_id=organisation_id, size_band=json.size_band,
                                      employees=json.employees), metadata=caller.metadata)
    return organisation(updated)


@bp.post(f"{BASE}/<organisation_id>/customers")
@spec.validate(json=ResellerCustomerBody, resp=Resp(HTTP_201=ResellerCustomerOut, HTTP_401=ErrorOut,
                                                    HTTP_403=ErrorOut, HTTP_404=ErrorOut, HTTP_409=ErrorOut,
                                                    HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def add_customer(organisation_id: str, json: ResellerCustomerBody) -> tuple[dict[str, Any], int]:
    caller = require_role("admin")
    link = backends().organisations.AddResellerCustomer(
        pb.AddResellerCustomerRequest(reseller_id=organisation_id,
                                      customer_organisation_id=json.customer_organisation_id),
        metadata=caller.metadata)
    return {"reseller_id": link.reseller_id, "customer_organisation_id": link.customer_organisation_id,
            "since": rfc3339(link.since)}, 201


@bp.delete(f"{BASE}/<organisation_id>/customers/<customer_id>")
@spec.validate(resp=Resp("HTTP_204", HTTP_401=ErrorOut, HTTP_403=ErrorOut, HTTP_404=ErrorOut, HTTP_422=ErrorOut),
               tags=["admin"], security=BEARER)
def remove_customer(organisation_id: str, customer_id: str) -> Response:
    caller = require_role("admin")
    backends().organisations.RemoveResellerCustomer(
        pb.RemoveResellerCustomerRequest(reseller_id=organisation_id, customer_organisation_id=customer_id),
        metadata=caller.metadata)
    return Response(status=204)
