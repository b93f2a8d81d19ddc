"""Consent administration: campaigns and update notices, notice versions, opt-outs that staff record."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from kaseum.consent.v1 import consent_pb2
from spectree import Response as Resp

from .. import convert
from ..auth import backends, require_role
from ..config import GatewaySettings
from ..openapi import BEARER, spec
from ..schemas import (
    CampaignBody,
    CampaignOut,
    ErrorOut,
    NoticeBody,
    NoticeOut,
    OptOutBody,
    PreferencesOut,
    ProductHoldingBody,
)

bp = Blueprint("campaigns", __name__)
ERRORS = {"HTTP_401": ErrorOut, "HTTP_403": ErrorOut, "HTTP_422": ErrorOut}


def bulk_deadline() -> float:
    """Deciding and enqueuing for every customer outlasts the usual upstream deadline (config.py)."""
    settings: GatewaySettings = current_app.extensions["kaseum_settings"]
    return settings.bulk_send_deadline


@bp.post("/api/v1/admin/campaigns")
@spec.validate(json=CampaignBody, resp=Resp(HTTP_202=CampaignOut, HTTP_409=ErrorOut, **ERRORS), tags=["admin"],
               security=BEARER)
def send_campaign(json: CampaignBody) -> tuple[dict[str, Any], int]:
    """Marketing goes only to those CanContact allows; each message is queued durably and sent shortly.

    Send an `Idempotency-Key` header (1-100 printable ASCII characters) to retry safely: the same key
    answers the campaign already made (202 again); with other content it is a 409."""
    caller = require_role("admin")
    # Consent checks the role again from the token, and the key.
    result = backends().consent.SendCampaign(consent_pb2.SendCampaignRequest(
        subject=json.subject, body=json.body, channel=json.channel, purpose=json.purpose, product=json.product,
        kind=json.kind, idempotency_key=request.headers.get("Idempotency-Key", "").strip()),
        metadata=caller.metadata, timeout=bulk_deadline())
    return {"id": result.id, "audience": result.audience, "eligible": result.eligible,
            "suppressed": result.suppressed}, 202


@bp.post("/api/v1/admin/notices")
@spec.validate(json=NoticeBody, resp=Resp(HTTP_201=NoticeOut, HTTP_409=ErrorOut, **ERRORS), tags=["admin"],
               security=BEARER)
def publish_notice(json: NoticeBody) -> tuple[dict[str, Any], int]:
    """A new version of the privacy notice or terms: every customer is told (section 4.1.2).

    The version is the idempotency key: the same publication again answers the first (201 again);
    a different one under a published version is a 409."""
    caller = require_role("admin")
    result = backends().consent.PublishNotice(consent_pb2.PublishNoticeRequest(
        version=json.version, document=json.document, changes_purpose=json.changes_purpose, summary=json.summary),
        metadata=caller.metadata, timeout=bulk_deadline())
    return {"version": result.version, "recipients": result.recipients}, 201


@bp.post("/api/v1/admin/opt-outs")
@spec.validate(json=OptOutBody, resp=Resp(HTTP_200=PreferencesOut, HTTP_404=ErrorOut, **ERRORS), tags=["admin"],
               security=BEARER)
def record_opt_out(json: OptOutBody) -> dict[str, Any]:
    """Staff record an opt-out or objection that came by e-mail to portal@kaseum.com (section 8.1(c))."""
    caller = require_role("dpo", "admin")
    prefs = backends().consent.RecordOptOut(consent_pb2.RecordOptOutRequest(
        subject_id=json.subject_id, channels=json.channels, objection=json.objection, source="dpo_email"),
        metadata=caller.metadata)
    return convert.preferences(prefs)


@bp.post("/api/v1/admin/product-holdings")
@spec.validate(json=ProductHoldingBody, resp=Resp("HTTP_204", HTTP_404=ErrorOut, **ERRORS), tags=["admin"],
               security=BEARER)
def record_product_holding(json: ProductHoldingBody) -> tuple[str, int]:
    """Record that a customer holds a product: its update notices are service messages to them (4.1.5)."""
    caller = require_role("admin")
    backends().consent.RecordProductHolding(consent_pb2.RecordProductHoldingRequest(
        subject_id=json.subject_id, product=json.product), metadata=caller.metadata)
    return "", 204
