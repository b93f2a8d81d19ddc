"""argon2id password hashing (argon2-cffi), with re-hash when parameters rise."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, helpers: int = 8) -> None:
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                      parallelism=parallelism)
        # Verified against when the login is unknown, so both paths cost one hash.
        self._dummy = self._hasher.hash("kaseum-dummy-password-for-timing")
        # Runs sign-ins' preparation while argon2id hashes (verify_alongside), one thread per sign-in at once
        # (a preparation may wait on a row another holds); threads start on first use.
        self._helper = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="sign-in")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_alongside(self, stored: str | None, password: str, work: Callable[[], T],
                         discard: Callable[[T], None] | None = None) -> tuple[bool, T | None]:
        """`verify(stored, password)`, with `work` run on a helper thread meanwhile: argon2-cffi releases the
        GIL while it hashes, so what a right password needs next (a session, its tokens, its rows) is ready
        when the verdict is, instead of being made after ~20 ms of hashing has left the CPU caches cold.

        Returns the verdict and, only when it is True, `work`'s result (its exception is raised then). When
        the password is wrong, or the verify fails, `work`'s result is never returned: it goes to `discard`
        (if given) on a helper thread once `work` ends, so a wrong password answers as soon as an unknown
        login does. The caller must make `work` change nothing that `discard` does not undo.
        """
        # In the caller's context: the trace the sign-in's outbox row carries is the request's.
        pending = self._helper.submit(contextvars.copy_context().run, work)
        ok = False
        try:
            ok = self.verify(stored, password)
        finally:
            if not ok and discard is not None:
                self._helper.submit(_discard, pending, discard)
        return (True, pending.result()) if ok else (False, None)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def _discard(pending: Future[T], discard: Callable[[T], None]) -> None:
    if pending.exception() is None:
        discard(pending.result())
