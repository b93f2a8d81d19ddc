"""Consent's settings."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    notice_version: str = "2024-01"
