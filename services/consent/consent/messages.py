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
    if kind == "email_change_existing":
        return Content("Someone tried to use your address for another account",
                       "Someone asked to change the e-mail address of another Kaseum Customer Portal account to "
                       "this one, which already has an account. Nothing was changed: this address stays with "
                       "your account. If it was you, sign in to this account instead at:\n\n"
                       f"  {link(base, '/sign-in')}\n\n"
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


# The rights of section 13.1, as a message names them, with their clause of the privacy notice.
RIGHTS_KINDS = {
    "access": ("for access to your personal data", "13.1.1"),
    "rectification": ("for correction of your personal data", "13.1.2"),
    "erasure": ("for erasure of your personal data", "13.1.3"),
    "objection": ("objecting to the processing of your personal data", "13.1.4"),
    "restriction": ("for restriction of the processing of your personal data", "13.1.5"),
    "portability": ("for a transfer of your personal data", "13.1.6"),
    "withdraw_consent": ("withdrawing your consent", "13.1.7"),
}
# Rights request changes the subject is told of (rights.request.status_changed `change` → message kind).
RIGHTS_CHANGES = {"extended": "rights_extended", "refused": "rights_refused", "completed": "rights_completed",
                  "lift_announced": "rights_lift_announced"}
RIGHTS_VERIFICATION = "rights_verification"
CONTACT_ADDRESS = "portal@kaseum.com"  # the address for rights requests (privacy notice, section 13.2)
ICO = ("the Information Commissioner's Office (ICO), at https://ico.org.uk/make-a-complaint/ or on "
       "0303 123 1113")


def _day(value: str) -> str:
    return f"{datetime.fromisoformat(value):%d %B %Y}" if value else "the date shown in the portal"


def _moment(value: str) -> str:
    return f"{datetime.fromisoformat(value):%d %B %Y at %H:%M} UTC" if value else "a few days"


def rights_content(kind: str, base: str, request_id: str, facts: dict[str, str]) -> Content:
    """Messages about a rights request: ids, kinds and dates only; a DPO's reason is shown in the portal."""
    what, clause = RIGHTS_KINDS.get(facts.get("kind", ""), ("about your personal data", "13"))
    about = f"your request {what} (privacy notice, section {clause}; reference {request_id})"
    page = link(base, "/api/v1/rights-requests/" + request_id)
    if kind == RIGHTS_VERIFICATION:
        return Content("Confirm your request",
                       f"We received by e-mail, in your name, a request {what} (privacy notice, section {clause}); "
                       "our Data Protection Officer filed it for you (section 13.2). Before we act on it we must "
                       f"check that it came from you. If it did, reply to this message (or write to {CONTACT_ADDRESS}) "
                       "giving our Data Protection Officer this one-time code:\n\n"
                       f"  {facts['code']}\n\n"
                       f"The code is valid until {_moment(facts.get('expires_at', ''))}. Once the Data "
                       f"Protection Officer has entered it, work on the request (reference {request_id}) starts.\n\n"
                       "If you did not make this request, do not reply and give the code to no one: nothing "
                       "will be done.")
    if kind == "rights_extended":
        return Content("We need more time for your request",
                       f"We have extended the time we have to answer {about}, as the law allows for complex or "
                       f"numerous requests (UK GDPR Art. 12(3)). We will answer by {_day(facts.get('due_at', ''))}."
                       f"\n\nThe reason is shown on your request in the portal:\n\n  {page}")
    if kind == "rights_refused":
        return Content("Your request was refused",
                       f"We have refused {about}, as the law allows for a manifestly unfounded or excessive "
                       "request (UK GDPR Art. 12(5); privacy notice, section 13.3). The reason is shown on your "
                       f"request in the portal:\n\n  {page}\n\n"
                       f"If you disagree, you have the right to complain to {ICO}, and to seek a judicial "
                       "remedy through the courts.")
    if kind == "rights_completed":
        body = f"We have completed {about}. See it in the portal:\n\n  {page}"
        if facts.get("kind") in ("access", "portability"):
            body += ("\n\nYour personal data is ready to download from the portal for 7 days, signed in to "
                     f"your account (only you can download it):\n\n  {page}/export")
        return Content("Your request is complete", body)
    if kind == "rights_lift_announced":
        return Content("We will lift the restriction of your data",
                       f"Following {about}, we have restricted the processing of your personal data. We will "
                       f"lift that restriction on {_moment(facts.get('lift_at', ''))}; we will then process your "
                       "data again as our privacy "
                       "notice describes.\n\nIf you object, tell us before then: reply to this message, write "
                       f"to {CONTACT_ADDRESS}, or file an objection in the portal. Your request:\n\n  {page}")
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
