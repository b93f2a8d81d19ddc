"""Campaigns, update notices and notice versions: decide the audience once, enqueue durably.

Deciding is CanContact over everyone at once (one read of preferences and restrictions, the pure
rule per subject); each allowed subject gets one queued message keyed by (campaign, subject), all
in one transaction, so a crash enqueues all or nothing and a subject never gets two copies. The
sender asks again at send time, so an opt-out between now and then still counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kaseum.events.v1 import consent_events_pb2 as ev
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, new_id, utcnow
from servicekit.errors import Collision, Conflict, InvalidArgument, NotFound, PermissionDenied

from .decisions import decide
from .models import Campaign, NoticeVersion, ProductHolding, Repository

KINDS = ("campaign", "product_update")


@dataclass(frozen=True)
class CampaignResult:
    id: str
    audience: int
    eligible: int
    suppressed: int


def require_admin(principal: Principal) -> str:
    if principal.is_service:
        if principal.subject_id != "cli":
            raise PermissionDenied("not allowed for this caller")
        return "cli"
    if principal.role != "admin":
        raise PermissionDenied("not allowed for this role")
    return principal.subject_id


def queued(message_id: str, dedup: str, subject_id: str, kind: str, purpose: str, channel: str, campaign_id: str,
           ref: str, now: datetime) -> dict[str, object]:
    return {"id": message_id, "dedup_key": dedup, "subject_id": subject_id, "kind": kind, "purpose": purpose,
            "channel": channel, "campaign_id": campaign_id, "ref": ref, "facts": "", "token_id": "",
            "token_sealed": None, "state": "pending", "reason": "", "attempts": 0, "next_attempt_at": now,
            "lease_id": "", "lease_until": None, "created_at": now, "sent_at": None}


class Campaigns:
    def __init__(self, uow: UnitOfWorkFactory[Repository], clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.clock = clock

    def send(self, principal: Principal, subject: str, body: str, channel: str, purpose: str, product: str,
             kind: str = "campaign", key: str = "") -> CampaignResult:
        """Decide and enqueue a campaign. With an idempotency `key`, a retry by the same admin (after a
        timeout, say, while the first call went on to commit) answers the campaign the first call made."""
        author = require_admin(principal)
        kind = kind or "campaign"
        if kind not in KINDS:
            raise InvalidArgument("kind must be campaign or product_update", "invalid_kind")
        if channel != "email":
            raise InvalidArgument("channel must be email", "invalid_channel")
        if purpose not in ("marketing", "service"):
            raise InvalidArgument("purpose must be marketing or service", "invalid_purpose")
        if not subject.strip() or len(subject) > 200 or not body.strip() or len(body) > 50_000:
            raise InvalidArgument("subject (1-200 characters) and body (1-50,000) are required", "invalid_content")
        if kind == "product_update" and not product:
            raise InvalidArgument("an update notice names its product", "missing_product")
        if key and (len(key) > 100 or not all(" " < c <= "~" for c in key)):
            raise InvalidArgument("the idempotency key is 1-100 printable ASCII characters", "invalid_idempotency_key")
        content = (kind, subject, body, channel, purpose, product)
        earlier = self._earlier(author, key, content)
        if earlier is not None:
            return earlier
        try:
            return self._decide(author, key, content)
        except Collision:
            # Another call with the same key committed first (this one waited for it): answer that one.
            earlier = self._earlier(author, key, content)
            if earlier is None:
                raise
            return earlier

    def _earlier(self, author: str, key: str, content: tuple[str, ...]) -> CampaignResult | None:
        if not key:
            return None
        with self.uow() as uow:
            found = uow.repo.campaign_by_key(author, key)
        if found is None:
            return None
        if (found.kind, found.subject, found.body, found.channel, found.purpose, found.product) != content:
            raise Conflict("that idempotency key was used for another campaign", "idempotency_key_reused")
        return CampaignResult(found.id, found.audience, found.eligible, found.audience - found.eligible)

    def _decide(self, author: str, key: str, content: tuple[str, ...]) -> CampaignResult:
        kind, subject, body, channel, purpose, product = content
        now = self.clock()
        campaign = Campaign(id=new_id(), kind=kind, subject=subject, body=body, channel=channel, purpose=purpose,
                            product=product, created_by=author, created_at=now, request_key=key or None)
        with self.uow() as uow:
            # The row first: a concurrent call with the same key stops here instead of deciding again.
            uow.repo.insert_now(campaign)
            everyone = uow.repo.all_preferences()
            restricted = uow.repo.all_restricted()
            floor = uow.repo.purpose_floor()
            holders = uow.repo.holders(product) if product else set()
            rows = []
            audience = 0
            for prefs in everyone:
                holds = prefs.subject_id in holders
                if kind == "campaign" and product and not holds:
                    continue
                audience += 1
                # An update notice is a service message to holders of the product, marketing to others (4.1.5).
                as_purpose = "service" if (kind == "product_update" and holds) else (
                    "marketing" if kind == "product_update" else purpose)
                if decide(prefs, channel, as_purpose, prefs.subject_id in restricted, floor).allowed:
                    rows.append(queued(new_id(), f"c:{campaign.id}:{prefs.subject_id}", prefs.subject_id, kind,
                                       as_purpose, channel, campaign.id, "", now))
            campaign.audience, campaign.eligible = audience, len(rows)
            uow.repo.enqueue_many(rows)
            uow.commit()
        return CampaignResult(campaign.id, audience, len(rows), audience - len(rows))

    def publish_notice(self, principal: Principal, version: str, document: str, changes_purpose: bool,
                       summary: str) -> tuple[str, int]:
        """A new notice version: a service message to every active customer (section 4.1.2).

        The version is the request's idempotency key: the same publication again (a retry after a
        timeout) answers the first one; a different one under a published version is refused."""
        require_admin(principal)
        version = version.strip()
        if not version or len(version) > 20:
            raise InvalidArgument("version is required (at most 20 characters)", "invalid_version")
        if document not in ("privacy", "terms"):
            raise InvalidArgument("document must be privacy or terms", "invalid_document")
        if len(summary) > 5000:
            raise InvalidArgument("summary must be at most 5,000 characters", "too_long")
        content = (document, changes_purpose, summary)
        earlier = self._published(version, content)
        if earlier is not None:
            return earlier
        try:
            return self._publish(version, document, changes_purpose, summary)
        except Collision:
            earlier = self._published(version, content)
            if earlier is None:
                raise  # another version took the same place in the order: the caller may try again
            return earlier

    def _published(self, version: str, content: tuple[str, bool, str]) -> tuple[str, int] | None:
        with self.uow() as uow:
            found = uow.repo.notice(version)
        if found is None:
            return None
        if (found.document, found.changes_purpose, found.summary) != content:
            raise Conflict("that version is already published", "already_published")
        return version, found.recipients

    def _publish(self, version: str, document: str, changes_purpose: bool, summary: str) -> tuple[str, int]:
        now = self.clock()
        with self.uow() as uow:
            latest = uow.repo.latest_notice()
            notice = NoticeVersion(seq=(latest.seq if latest else 0) + 1, version=version, document=document,
                                   changes_purpose=changes_purpose, summary=summary, published_at=now)
            uow.repo.insert_now(notice)
            rows = [queued(new_id(), f"n:{version}:{p.subject_id}", p.subject_id, "notice_change", "service",
                           "email", "", version, now) for p in uow.repo.all_preferences()]
            notice.recipients = len(rows)
            uow.repo.enqueue_many(rows)
            uow.events.publish("consent.notice.published", "", ev.NoticePublished(
                version=version, document=document, changes_purpose=changes_purpose))
            uow.commit()
        return version, len(rows)

    def record_holding(self, principal: Principal, subject_id: str, product: str) -> None:
        require_admin(principal)
        product = product.strip()
        if not product or len(product) > 100:
            raise InvalidArgument("product is required (at most 100 characters)", "invalid_product")
        with self.uow() as uow:
            if uow.repo.preferences(subject_id) is None:
                raise NotFound("customer not found")
            if uow.repo.holding(subject_id, product) is None:
                uow.repo.add(ProductHolding(subject_id=subject_id, product=product, since=self.clock()))
            uow.commit()
