"""The text of every message consent sends, composed with the stdlib `email` package.

Service messages (section 8.2) carry no marketing. Marketing messages carry their own one-click
unsubscribe link, in the body and in the RFC 8058 headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

SERVICE_FOOTER = ("You receive this service message whatever your marketing choices: it concerns your "
                  "account or our relationship with you (privacy notice, section 8.2).")


@dataclass(frozen=True)
class Content:
    subject: str
    body: str


def link(base: str, path: str, token: str = "") -> str:
    return base.rstrip("/") + path + (f"?token={quote(token, safe='')}" if token else "")


def service_content(kind: str, base: str, token: str = "", ref: str = "") -> Content:
    """The fixed service messages; campaigns and notices bring their own content."""
    if kind == "verify_email":
        return Content("Confirm your e-mail address",
                       "Please confirm the e-mail address of your Kaseum Customer Portal account by opening:\n\n"
                       f"  {link(base, '/verify-email', token)}\n\n"
                       "The link works once and expires in 7 days. If you did not sign up, ignore this message.")
    if kind == "reset_password":
        return Content("Reset your password",
                       "Someone (we hope you) asked to reset the password of your Kaseum Customer Portal account. "
                       "To choose a new one, open:\n\n"
                       f"  {link(base, '/reset-password', token)}\n\n"
                       "The link works once and expires in 1 hour. If you did not ask, ignore this message: "
                       "your password is unchanged.")
    if kind == "signup_existing":
        return Content("Someone tried to sign up with your address",
                       "Someone tried to create a Kaseum Customer Portal account with this e-mail address, "
                       "which already has one. If it was you, sign in, or reset your password at:\n\n"
                       f"  {link(base, '/reset-password')}\n\n"
                       "If it was not you, no action is needed.")
    if kind == "signup_username_taken":
        return Content("Choose another username",
                       "The username you chose for your Kaseum Customer Portal account is already in use. "
                       "To finish signing up with another one, open:\n\n"
                       f"  {link(base, '/sign-up', token)}\n\n"
                       "If you did not try to sign up, ignore this message.")
    if kind == "inactivity_warning":
        return Content("Your account will be erased unless you sign in",
                       "You have not signed in to your Kaseum Customer Portal account for two years. We keep "
                       "personal data only as long as we need it (privacy notice, section 12), so unless you "
                       "sign in within 30 days your account and its data will be erased. To keep it, sign in at:"
                       f"\n\n  {link(base, '/sign-in')}")
    if kind == "ticket_reply":
        return Content("New reply to your support ticket",
                       f"There is a new reply to your ticket. Read it at:\n\n  {link(base, '/tickets/' + ref)}")
    if kind == "ticket_update":
        return Content("Your support ticket was updated",
                       f"The status of your ticket changed. See it at:\n\n  {link(base, '/tickets/' + ref)}")
    raise ValueError(f"no template for {kind}")


def notice_content(document: str, version: str, summary: str, base: str) -> Content:
    name = "privacy notice" if document == "privacy" else "terms of use"
    return Content(f"We have updated our {name}",
                   f"We have published version {version} of our {name}.\n\n{summary.strip()}\n\n"
                   f"Read it in full at {link(base, '/' + document)}. Your marketing choices are unchanged "
                   "unless we tell you otherwise; you can review them on the portal's preference page.")


def compose(*, message_id: str, sender: str, to: str, content: Content, marketing: bool, unsubscribe_url: str,
            now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = content.subject
    msg["Date"] = format_datetime(now)
    # Stable per queued message: a receiving system can recognise a copy.
    msg["Message-ID"] = f"<{message_id}@portal.kaseum.com>"
    body = content.body.rstrip() + "\n\n-- \n"
    if marketing:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body += ("You receive this because you agreed to marketing by e-mail from Kaseum. "
                 f"To stop, open this link (one click, no sign-in needed):\n  {unsubscribe_url}\n"
                 "or change your choices in the portal's preference page, or write to portal@kaseum.com.\n")
    else:
        msg["Auto-Submitted"] = "auto-generated"
        body += SERVICE_FOOTER + "\n"
    msg.set_content(body)
    return msg
