"""E-mail verification and password reset: single-use, expiring tokens sent as service messages.

Identity never sends mail: it records a token and publishes `identity.message.requested`
(no address, no secret). The sending service (consent) claims the token's secret at send
time; identity keeps only its hash. A reset request answers the same whether or not the
address belongs to an account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kaseum.events.v1 import identity_events_pb2 as ev
from servicekit.db import UnitOfWork, UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import Collision, Conflict, InvalidArgument, NotFound

from . import validation as v
from .models import Account, AccountToken, AddressMessage, Repository
from .passwords import Passwords
from .throttle import Throttle

VERIFY, RESET = "verify_email", "reset_password"
# The link that confirms a new address (the account's `pending_email`): sent to that address, as a
# "verify_email" message to someone the sender knows only by the address the token names.
CHANGE = "change_email"
# To the owner of an address someone asked to change theirs to: nothing changed, no link.
EMAIL_CHANGE_EXISTING = "email_change_existing"
USERNAME_TAKEN = "signup_username_taken"
# Two years without a sign-in: "sign in within 30 days or the account is erased" (section 12).
INACTIVITY_WARNING = "inactivity_warning"
LIFETIME = {VERIFY: timedelta(days=7), CHANGE: timedelta(days=7), RESET: timedelta(hours=1)}
# How long the address of someone without an account waits for the sender to claim it.
ADDRESS_LIFETIME = timedelta(days=1)
RESETS_PER_HOUR = 3


class TokenError(InvalidArgument):
    """Forged, used or expired: one answer for all, so a token's history does not leak."""

    def __init__(self) -> None:
        super().__init__("the link is invalid or has expired; ask for a new one", "invalid_token")


def request_message(uow: UnitOfWork[Repository], account_id: str, kind: str, now: datetime) -> str:
    """Record a token (for token kinds) and ask for the message, in the caller's transaction."""
    token_id = ""
    if kind in LIFETIME:
        token_id = new_id()
        uow.repo.add(AccountToken(id=token_id, account_id=account_id, purpose=kind, secret_hash="",
                                  created_at=now, expires_at=now + LIFETIME[kind], used_at=None))
    uow.events.publish("identity.message.requested", account_id,
                       ev.MessageRequested(account_id=account_id, kind=kind, token_id=token_id))
    return token_id


def request_address_message(uow: UnitOfWork[Repository], email: str, kind: str, now: datetime) -> str:
    """Ask for a message to an address that has no account, in the caller's transaction.

    The event carries only the row's id; the sender claims the address once (`claim`)."""
    message_id = new_id()
    uow.repo.add(AddressMessage(id=message_id, email=email, purpose=kind, created_at=now,
                                expires_at=now + ADDRESS_LIFETIME))
    uow.events.publish("identity.message.requested", message_id,
                       ev.MessageRequested(account_id="", kind=kind, token_id=message_id))
    return message_id


def request_address_change(uow: UnitOfWork[Repository], account_id: str, now: datetime) -> str:
    """Record a link confirming the account's pending address and ask for it to be sent there, in
    the caller's transaction. The event names no account: the sender writes to the address the
    claimed token gives (`claim`), not to the account's current one."""
    token_id = new_id()
    uow.repo.add(AccountToken(id=token_id, account_id=account_id, purpose=CHANGE, secret_hash="",
                              created_at=now, expires_at=now + LIFETIME[CHANGE], used_at=None))
    uow.events.publish("identity.message.requested", token_id,
                       ev.MessageRequested(account_id="", kind=VERIFY, token_id=token_id))
    return token_id


@dataclass(frozen=True)
class Claimed:
    """What the sender needs for one message: the link's token, or the address to write to."""

    purpose: str
    expires_at: datetime
    token: str = ""
    email: str = ""


class Recovery:
    def __init__(self, uow: UnitOfWorkFactory[Repository], passwords: Passwords, throttle: Throttle,
                 announce: Callable[[list[str]], None] = lambda ids: None) -> None:
        self.announce = announce
        self.uow = uow
        self.passwords = passwords
        self.throttle = throttle

    def claim(self, token_id: str) -> Claimed:
        """The secret for the message's link, made now and returned once; or, for a message to
        someone without an account, the address, returned once and then forgotten."""
        with self.uow() as uow:
            token = uow.repo.token(token_id) if token_id else None
            if token is None:
                return self._claim_address(uow, token_id)
            if token.secret_hash or token.used_at is not None:
                raise Conflict("token already claimed", "already_claimed")
            address = ""
            if token.purpose == CHANGE:
                account = uow.repo.account(token.account_id)
                if account is None or not account.pending_email:  # voided with the change (defensive)
                    raise Conflict("token already claimed", "already_claimed")
                address = account.pending_email  # the link goes to the new address, never the old
            secret = secrets.token_urlsafe(32)
            token.secret_hash = digest(secret)
            uow.commit()
            return Claimed(token.purpose, as_utc(token.expires_at), token=f"{token.id}.{secret}", email=address)

    @staticmethod
    def _claim_address(uow: UnitOfWork[Repository], message_id: str) -> Claimed:
        message = uow.repo.address_message(message_id) if message_id else None
        if message is None or as_utc(message.expires_at) <= utcnow():
            # Claimed before, expired or never made: the same answer.
            raise NotFound("token not found")
        claimed = Claimed(message.purpose, as_utc(message.expires_at), email=message.email)
        uow.repo.delete(message)
        uow.commit()
        return claimed

    def request_reset(self, email: str, ip_address: str) -> None:
        now = utcnow()
        try:
            address = v.email(email)
        except InvalidArgument:
            return  # the same silent answer as for an unknown address
        with self.uow() as uow:
            # Capped per address (known or not, so the cap reveals nothing) and per client.
            self.throttle.count(uow.repo, self.throttle.key("reset", v.email_key(address)), RESETS_PER_HOUR,
                                timedelta(hours=1), now)
            if ip_address:
                self.throttle.count(uow.repo, self.throttle.key("reset-ip", ip_address), 20, timedelta(hours=1), now)
            account = uow.repo.account_by_login(v.email_key(address))
            if account is not None:
                request_message(uow, account.id, RESET, now)
            uow.commit()

    def _redeem(self, uow: UnitOfWork[Repository], presented: str, purposes: tuple[str, ...],
                now: datetime) -> tuple[Account, str]:
        """The token's account and purpose (one of `purposes`), the token now used."""
        token_id, _, secret = presented.partition(".")
        token = uow.repo.token(token_id) if token_id and secret else None
        if (token is None or token.purpose not in purposes or not token.secret_hash
                or token.used_at is not None or as_utc(token.expires_at) <= now
                or not hmac.compare_digest(token.secret_hash, digest(secret))):
            raise TokenError()
        account = uow.repo.account(token.account_id)
        if account is None:
            raise TokenError()
        token.used_at = now
        return account, token.purpose

    def confirm_reset(self, presented: str, new_password: str) -> list[str]:
        """Set the new password; returns the sessions revoked (all of them)."""
        now = utcnow()
        with self.uow() as uow:
            account, _ = self._redeem(uow, presented, (RESET,), now)
            account.password_hash = self.passwords.hash(
                v.password(new_password, (account.username, account.email, account.first_name, account.last_name)))
            account.updated_at = now
            revoked = uow.repo.revoke_sessions(account.id, now)
            if revoked:
                uow.events.publish("identity.session.revoked", account.id,
                                   ev.SessionsRevoked(account_id=account.id, session_ids=revoked))
            self.announce(revoked)
            uow.commit()
        return revoked

    def confirm_email(self, presented: str) -> None:
        """Verify the account's address; or, for a link sent to a pending address, make it the
        account's address (verified), provided it is still free: if another account has it now, the
        answer is that of an expired link and nothing changes."""
        now = utcnow()
        with self.uow() as uow:
            account, purpose = self._redeem(uow, presented, (VERIFY, CHANGE), now)
            if purpose == CHANGE:
                address = account.pending_email
                if not address or uow.repo.email_taken(v.email_key(address), except_id=account.id):
                    raise TokenError()  # the unit of work is not committed: the link stays as it was
                account.email, account.email_key = address, v.email_key(address)
                account.pending_email = ""
                account.updated_at = now
                uow.repo.void_tokens(account.id, VERIFY, now)  # links sent to the old address verify nothing now
                uow.events.publish("identity.account.rectified", account.id,
                                   ev.AccountRectified(account_id=account.id, fields=["email"]))
            account.email_verified_at = now
            try:
                uow.commit()
            except Collision as exc:
                raise TokenError() from exc  # another account took the address a moment ago

    def resend_verification(self, account_id: str) -> None:
        now = utcnow()
        with self.uow() as uow:
            account = uow.repo.account(account_id)
            if account is None:
                raise NotFound("account not found")
            if account.email_verified_at is not None:
                raise Conflict("the e-mail address is already verified", "already_verified")
            self.throttle.count(uow.repo, self.throttle.key("verify", account_id), 5, timedelta(hours=1), now)
            request_message(uow, account.id, VERIFY, now)
            uow.commit()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
