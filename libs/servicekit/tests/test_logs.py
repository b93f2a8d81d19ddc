"""No personal data in logs: an error's message and a failed statement's values stay out of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from servicekit.db import make_engine
from servicekit.logs import processors
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

ADDRESS = "ada.lovelace@example.com"


@pytest.mark.notice("11")
def test_a_logged_exception_has_its_addresses_redacted() -> None:
    try:
        raise RuntimeError(f"no account for {ADDRESS}")
    except RuntimeError as exc:
        event: Any = {"event": "unhandled error", "exc_info": exc}
    for step in processors():  # what setup_logging configures, run on one line here
        event = step(None, "error", event)
    line = json.loads(event)
    assert "RuntimeError" in line["exception"] and "[redacted-email]" in line["exception"]
    assert ADDRESS not in event


@pytest.mark.notice("11")
def test_a_failed_statement_does_not_carry_its_values(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (email TEXT UNIQUE, phone TEXT)"))
        conn.execute(text("INSERT INTO people VALUES (:e, :p)"), {"e": ADDRESS, "p": "+447700900123"})
    with pytest.raises(IntegrityError) as refused, engine.begin() as conn:
        conn.execute(text("INSERT INTO people VALUES (:e, :p)"), {"e": ADDRESS, "p": "+447700900123"})
    assert "UNIQUE" in str(refused.value)
    assert ADDRESS not in str(refused.value) and "+447700900123" not in str(refused.value)
