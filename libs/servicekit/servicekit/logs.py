"""Structured JSON logs with a redaction step: no personal data in log lines."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are personal data or secrets; they are dropped, not logged.
_SENSITIVE_KEYS = {
    "email", "phone", "password", "first_name", "last_name", "name", "username", "login",
    "company", "job_title", "body", "subject_line", "token", "ip", "ip_address", "user_agent",
    "details", "authorization",
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(event_dict[key], str):
            event_dict[key] = _EMAIL.sub("[redacted-email]", event_dict[key])
    return event_dict


def processors() -> list[Any]:
    """What every log line goes through, in order."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # After the traceback is rendered, so an exception's message is redacted too.
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.JSONRenderer(),
    ]


def setup_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    # Library chatter (e.g. nats reconnect errors) goes through the same redaction.
    structlog.configure(
        processors=processors(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
