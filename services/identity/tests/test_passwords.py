"""Unit tests of identity's password hashing (R-SEC-2): the work a sign-in prepares while argon2id runs."""

from __future__ import annotations

import contextvars
import threading

import pytest
from identity.passwords import Passwords
from servicekit.testing import eventually


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(1024, 1, 1)


@pytest.mark.rule("R-SEC-2")
def test_a_right_password_gets_the_work_done_on_another_thread_meanwhile(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")
    ok, made = passwords.verify_alongside(stored, "correct horse battery", threading.get_ident)
    assert ok is True and made is not None and made != threading.get_ident()


@pytest.mark.rule("R-SEC-2")
@pytest.mark.parametrize("stored", ["right", "garbage", None])
def test_a_wrong_password_or_no_account_gets_nothing_of_the_work(passwords: Passwords, stored: str | None) -> None:
    hashed = {"right": passwords.hash("correct horse battery"), "garbage": "$argon2id$nonsense", None: None}[stored]
    assert passwords.verify_alongside(hashed, "wrong password!!", lambda: "tokens") == (False, None)
    assert passwords.verify_alongside(None, "correct horse battery", lambda: "tokens") == (False, None)


@pytest.mark.rule("R-SEC-2")
def test_the_works_failure_reaches_the_caller_only_when_the_password_is_right(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")

    def broken() -> str:
        raise RuntimeError("signing key unavailable")

    assert passwords.verify_alongside(stored, "wrong password!!", broken) == (False, None)
    with pytest.raises(RuntimeError, match="signing key unavailable"):
        passwords.verify_alongside(stored, "correct horse battery", broken)


@pytest.mark.rule("R-SEC-2")
def test_a_wrong_passwords_work_is_discarded_once_it_has_ended(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery")
    discarded: list[str] = []
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "open transaction"

    # The verdict does not wait for the work; its discard follows, on a helper thread, once the work ends.
    assert passwords.verify_alongside(stored, "wrong password!!", slow, discard=discarded.append) == (False, None)
    assert discarded == []
    release.set()
    eventually(lambda: discarded == ["open transaction"])
    ok, made = passwords.verify_alongside(stored, "correct horse battery", slow, discard=discarded.append)
    assert (ok, made, discarded) == (True, "open transaction", ["open transaction"])


@pytest.mark.rule("R-SEC-2")
def test_the_work_is_discarded_when_the_verify_itself_fails(passwords: Passwords,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    discarded: list[str] = []

    def out_of_memory(stored: str | None, password: str) -> bool:
        raise MemoryError

    monkeypatch.setattr(passwords, "verify", out_of_memory)
    with pytest.raises(MemoryError):
        passwords.verify_alongside("stored", "correct horse battery", lambda: "rows", discard=discarded.append)
    eventually(lambda: discarded == ["rows"])


_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_the_work_runs_in_the_callers_context(passwords: Passwords) -> None:
    """The work sees the request's context variables (its trace, which the sign-in's outbox row carries)."""
    stored = passwords.hash("correct horse battery")
    token = _REQUEST.set("this request")
    try:
        ok, seen = passwords.verify_alongside(stored, "correct horse battery", _REQUEST.get)
    finally:
        _REQUEST.reset(token)
    assert ok is True and seen == "this request"
