"""No personal data in logs: an error's message and a failed statement's values stay out of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
from servicekit.db import make_engine
from servicekit.logs import setup_logging
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

ADDRESS = "ada.lovelace@example.com"


@pytest.mark.notice("11")
def test_a_logged_exception_has_its_addresses_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("test")
    try:
        raise RuntimeError(f"no account for {ADDRESS}")
    except RuntimeError as exc:
        structlog.get_logger("test").error("unhandled error", exc_info=exc)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "RuntimeError" in line["exception"] and "[redacted-email]" in line["exception"]
    assert ADDRESS not in json.dumps(line)


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
