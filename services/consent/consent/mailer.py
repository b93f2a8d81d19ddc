"""SMTP delivery with smtplib to the relay from settings, telling a definite refusal from an unknown outcome.

A refusal (connection refused, a 4xx/5xx reply) means the relay did not take the message: it can be
tried again. An error after the message data went out (the connection dropped, a timeout) leaves the
outcome unknown: the caller must not send it again, or the person could get it twice.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType


class Refused(Exception):
    """The relay did not accept the message; `permanent` for a 5xx answer."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class OutcomeUnknown(Exception):
    """The connection failed while the message was being handed over."""


class SmtpMailer:
    def __init__(self, host: str, port: int, username: str = "", password: str = "", starttls: bool = False,
                 timeout: float = 20.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.starttls = username, password, starttls

    def connect(self) -> SmtpConnection:
        try:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
        except smtplib.SMTPResponseException as exc:
            raise Refused(f"relay answered {exc.smtp_code}", exc.smtp_code >= 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise Refused(f"relay unreachable: {type(exc).__name__}") from exc
        return SmtpConnection(client)


class SmtpConnection:
    """One SMTP session carrying a batch of messages."""

    def __init__(self, client: smtplib.SMTP) -> None:
        self.client = client

    def send(self, message: EmailMessage) -> None:
        try:
            refused = self.client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Refused("recipient refused", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise Refused(f"relay answered {exc.smtp_code}", exc.smtp_code >= 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise OutcomeUnknown(type(exc).__name__) from exc
        if refused:
            raise Refused("recipient refused", permanent=True)

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.client.quit()
        except (OSError, smtplib.SMTPException):
            self.client.close()
