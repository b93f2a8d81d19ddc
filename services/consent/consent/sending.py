"""The sender: works through the durable outgoing queue in the database, from any replica.

Order of durable steps for one message, chosen so that nothing is sent twice and nothing is lost
silently (ClaimMessageToken works only once):

1. lease the row (a conditional UPDATE: one worker at a time; a dead worker's lease expires);
2. ask identity for the address now (never stored; asked once per subject in a round of up to `batch`
   messages) and, for marketing, ask CanContact again with it;
3. claim the link token if the message has one (from identity; a rights verification message's
   one-time code from rights), and commit it *sealed* (AES-GCM) on the row before anything else, so
   a crash or a relay outage after the claim loses nothing: any replica resumes with the sealed
   token. A token claimed by an attempt that died before step 3 committed cannot be claimed again:
   that message is marked `failed/token_lost` and logged, never dropped quietly (the person can ask
   for a new link; the DPO can have a new code sent);
4. commit state `sending`, then hand the message to the relay;
5. commit `sent` (the sealed token is dropped) with the `communication.sent` event in the outbox.

A relay refusal returns the row to `pending` with back-off. A failure while the message was being
handed over (outcome unknown) and a `sending` row whose worker died are marked `interrupted` and
never retried: at most once, with the gap visible.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from cryptography.exceptions import InvalidTag
from kaseum.events.v1 import consent_events_pb2 as ev
from servicekit.db import UnitOfWorkFactory, new_id, utcnow
from servicekit.logs import get_logger

from . import messages
from .codes import CodeGone, CodesUnavailable, VerificationCodes
from .decisions import decide
from .directory import Contact, Directory, DirectoryUnavailable, TokenGone
from .mailer import OutcomeUnknown, Refused, SmtpConnection, SmtpMailer
from .models import OutgoingMessage, Repository
from .service import ConsentService

log = get_logger(__name__)


@dataclass(frozen=True)
class SenderConfig:
    base_url: str
    sender: str
    batch: int = 20
    max_attempts: int = 8
    lease_seconds: float = 300.0


class Skip(Exception):
    """The message is not to be sent (state, reason)."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


class Later(Exception):
    """A dependency is away: try this message again later."""


class Sender:
    def __init__(self, uow: UnitOfWorkFactory[Repository], consent: ConsentService, directory: Directory,
                 codes: VerificationCodes, mailer: SmtpMailer, config: SenderConfig,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow, self.consent, self.directory, self.codes, self.mailer = uow, consent, directory, codes, mailer
        self.config, self.clock = config, clock

    def run_once(self) -> int:
        """Send one batch of due messages; returns how many rows were settled."""
        now = self.clock()
        lease = new_id()
        with self.uow() as uow:
            interrupted = uow.repo.interrupt_stale_sends(now)
            batch = uow.repo.claim_due(now, lease, now + timedelta(seconds=self.config.lease_seconds),
                                       self.config.batch)
            uow.commit()
        if interrupted:
            log.warning("sends interrupted by a stopped worker; not retried", count=interrupted)
        connection: SmtpConnection | None = None
        settled = 0
        contacts = self._contacts(batch)
        try:
            for row in batch:
                try:
                    email = self._prepare(row, lease, contacts)
                    if connection is None:
                        connection = self.mailer.connect()
                    if not self._mark_sending(row.id, lease):
                        continue
                    connection.send(email)
                except Skip as skip:
                    self._finish(row.id, skip.state, skip.reason)
                except Later:
                    self._retry(row.id, "dependency_unavailable", count=False)
                except Refused as refused:
                    self._retry(row.id, "relay_refused", permanent=refused.permanent)
                    if connection is None:  # the relay is away: leave the rest for the next round
                        break
                except OutcomeUnknown:
                    self._finish(row.id, "interrupted", "outcome_unknown")
                    connection = None
                except Exception:
                    # A bug or a surprise must not wedge the queue: count the attempt, give up after the last.
                    log.exception("message could not be prepared", message_id=row.id, kind=row.kind)
                    self._retry(row.id, "error")
                else:
                    self._sent(row)
                settled += 1
        finally:
            self._release(lease)
            if connection is not None:
                connection.__exit__(None, None, None)
        return settled

    def drain(self, rounds: int = 1000) -> int:
        total = 0
        for _ in range(rounds):
            done = self.run_once()
            total += done
            if not done:
                break
        return total

    # --- the steps ----------------------------------------------------------------
    def _contacts(self, batch: Sequence[OutgoingMessage]) -> dict[str, Contact | DirectoryUnavailable | None]:
        """Identity's answers for the round's subjects, asked once (GetContacts): every read is audited in
        identity, a subject's messages come in bursts (a reply and a status change, the steps of an erasure),
        and a round of many subjects costs one call and one audit append instead of one each."""
        subjects = sorted({row.subject_id for row in batch if row.subject_id})
        if not subjects:
            return {}
        try:
            return dict(zip(subjects, self.directory.contacts(subjects), strict=True))
        except DirectoryUnavailable as exc:
            return dict.fromkeys(subjects, exc)

    def _prepare(self, row: OutgoingMessage, lease: str,
                 contacts: dict[str, Contact | DirectoryUnavailable | None]) -> EmailMessage:
        marketing = row.purpose == "marketing"
        to = ""
        if row.subject_id:
            contact = contacts.get(row.subject_id)
            if isinstance(contact, DirectoryUnavailable):
                raise Later() from contact
            if contact is None:
                raise Skip("failed", "no_recipient")
            to = contact.email
            if marketing:
                with self.uow() as uow:
                    decision = decide(uow.repo.preferences(row.subject_id), row.channel, "marketing",
                                      contact.restricted or uow.repo.restricted(row.subject_id),
                                      uow.repo.purpose_floor(),
                                      self.consent.suppressed_since(uow, contact.email, contact.phone))
                if not decision.allowed:
                    raise Skip("skipped", decision.reason)
        secret: dict[str, str] = {}
        if row.token_id or row.kind == messages.RIGHTS_VERIFICATION:
            secret = self._secret(row, lease)
            to = to or secret.get("e", "")
        if not to:
            raise Skip("failed", "no_recipient")
        unsubscribe_url = ""
        if marketing:
            unsubscribe_url = messages.link(self.config.base_url, "/api/v1/unsubscribe",
                                            self.consent.unsubscribe_token(row.subject_id, row.channel, row.id))
        email = messages.compose(message_id=row.id, sender=self.config.sender, to=to,
                                 content=self._content(row, secret), marketing=marketing,
                                 unsubscribe_url=unsubscribe_url, now=self.clock())
        return email

    def _secret(self, row: OutgoingMessage, lease: str) -> dict[str, str]:
        """The claimed token ("t"; "e" an address to write to; "x" when a code expires), claimed once."""
        if row.token_sealed:
            try:
                opened = json.loads(self.consent.keys.open_text(row.token_sealed, row.id))
            except InvalidTag as exc:  # sealed under a key since rotated: the token is gone
                raise Skip("failed", "token_unreadable") from exc
            return {k: str(v) for k, v in opened.items()}
        try:
            claimed = self._claim(row)
        except (TokenGone, CodeGone) as exc:
            log.warning("message token already claimed or unknown; message not sent", message_id=row.id,
                        kind=row.kind)
            raise Skip("failed", "token_lost") from exc
        except (DirectoryUnavailable, CodesUnavailable) as exc:
            raise Later() from exc
        sealed = self.consent.keys.seal_text(json.dumps(claimed), row.id)
        with self.uow() as uow:
            found = uow.repo.message(row.id)
            if found is None:
                raise Skip("failed", "message_gone")  # erased meanwhile (its subject's erasure)
            if found.lease_id == lease:
                found.token_sealed = sealed
                if not uow.commit_unless_gone():
                    raise Skip("failed", "message_gone")
        return claimed

    def _claim(self, row: OutgoingMessage) -> dict[str, str]:
        if row.kind != messages.RIGHTS_VERIFICATION:
            token = self.directory.claim_token(row.token_id)
            return {"t": token.token, "e": token.email}
        code = self.codes.claim_code(row.ref)
        if code.subject_id != row.subject_id:
            # Never send one person's code to another: the event and rights disagree about whose request it is.
            log.error("verification code belongs to another subject; message not sent", message_id=row.id)
            raise Skip("failed", "wrong_subject")
        return {"t": code.code, "e": "", "x": code.expires_at.isoformat()}

    def _content(self, row: OutgoingMessage, secret: dict[str, str]) -> messages.Content:
        if row.kind.startswith("rights_"):
            facts: dict[str, str] = json.loads(row.facts) if row.facts else {}
            if row.kind == messages.RIGHTS_VERIFICATION:
                facts.update(code=secret["t"], expires_at=secret.get("x", ""))
            return messages.rights_content(row.kind, self.config.base_url, row.ref, facts)
        if row.kind in ("campaign", "product_update"):
            with self.uow() as uow:
                campaign = uow.repo.campaign(row.campaign_id)
            if campaign is None:
                raise Skip("failed", "campaign_missing")
            return messages.Content(campaign.subject, campaign.body)
        if row.kind == "notice_change":
            with self.uow() as uow:
                notice = uow.repo.notice(row.ref)
            if notice is None:
                raise Skip("failed", "notice_missing")
            return messages.notice_content(notice.document, notice.version, notice.summary, self.config.base_url)
        return messages.service_content(row.kind, self.config.base_url, secret.get("t", ""), row.ref)

    # --- recording -------------------------------------------------------------------
    def _mark_sending(self, message_id: str, lease: str) -> bool:
        """False when the row was erased meanwhile, or the lease was lost."""
        until = self.clock() + timedelta(seconds=self.config.lease_seconds)
        with self.uow() as uow:
            if not uow.repo.mark_sending(message_id, lease, until):
                return False
            uow.commit()
            return True

    def _finish(self, message_id: str, state: str, reason: str) -> None:
        with self.uow() as uow:
            row = uow.repo.message(message_id)
            if row is not None:
                row.state, row.reason, row.token_sealed, row.lease_id, row.lease_until = state, reason, None, "", None
                uow.commit_unless_gone()

    def _retry(self, message_id: str, reason: str, permanent: bool = False, count: bool = True) -> None:
        with self.uow() as uow:
            row = uow.repo.message(message_id)
            if row is None:
                return
            row.attempts += 1 if count else 0
            if permanent or row.attempts >= self.config.max_attempts:
                row.state, row.reason, row.token_sealed = "failed", "undeliverable", None
            else:
                row.state, row.reason = "pending", reason
                row.next_attempt_at = self.clock() + timedelta(seconds=min(5 * 2 ** row.attempts, 900))
            row.lease_id, row.lease_until = "", None
            uow.commit_unless_gone()

    def _sent(self, sent: OutgoingMessage) -> None:
        # What the event says is fixed when the row is queued, so the leased copy is used, not read again.
        with self.uow() as uow:
            if not uow.repo.record_sent(sent.id, self.clock()):
                return  # erased meanwhile: nothing to record, no event about them
            if sent.kind == "notice_change" and sent.subject_id:
                uow.repo.note_notice_seen(sent.subject_id, sent.ref)
            uow.events.publish("consent.communication.sent", sent.subject_id, ev.CommunicationSent(
                communication_id=sent.id, subject_id=sent.subject_id, purpose=sent.purpose, channel=sent.channel,
                kind=sent.kind, campaign_id=sent.campaign_id))
            uow.commit()

    def _release(self, lease: str) -> None:
        """Rows of this batch not settled (the relay went away) are free for the next round."""
        with self.uow() as uow:
            uow.repo.release(lease)
            uow.commit()
