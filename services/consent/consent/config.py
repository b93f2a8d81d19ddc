"""Consent's settings."""

from __future__ import annotations

from pydantic import SecretStr
from servicekit.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    # The notice version in force before any is published through PublishNotice.
    notice_version: str = "2024-01"
    # Where links in messages point: the gateway's public address (PUBLIC_BASE_URL).
    public_base_url: str = "http://127.0.0.1:8080"
    # The mail relay (SMTP_HOST, SMTP_PORT, …); `make run` starts a local sink writing var/mail/*.eml.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout: float = 20.0
    mail_from: str = "Kaseum Customer Portal <portal@kaseum.com>"
    # Seconds between looks at the outgoing queue; messages per batch (one SMTP connection each).
    send_poll_seconds: float = 0.5
    send_batch: int = 20
    # Attempts at a message the relay keeps refusing before it is marked failed.
    send_max_attempts: int = 8
    # How long an unsubscribe link works.
    unsubscribe_token_days: int = 90
    # Keys the suppression list's hashes (HMAC-SHA256). Defaults to one derived from the service
    # secret; set it explicitly so that rotating that secret does not orphan the list.
    suppression_key: SecretStr = SecretStr("")
