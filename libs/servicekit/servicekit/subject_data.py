"""What a service's rules answer for the personal-data contract (no gRPC here).

Each service's rules class derives from `SubjectDataRules`; one generic gRPC
servicer (personal_data.py) translates for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# (table name, category of notice §3.2, column names, rows of text values). The rows may be any
# iterable: a lazy one (e.g. read from the database as it is sent) keeps a long history out of memory.
TableRows = tuple[str, str, list[str], Iterable[list[str]]]


@dataclass(frozen=True)
class Export:
    # In the order they are sent; each table's rows are read once, after the previous table's.
    tables: list[TableRows]
    note: str = ""


@dataclass(frozen=True)
class Erasure:
    erased: int
    # (what was kept, why): legal holds and legal obligations.
    kept: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Rectification:
    applied: list[str] = field(default_factory=list)
    # (field, why refused) — never the value.
    rejected: list[tuple[str, str]] = field(default_factory=list)


class SubjectDataRules:
    """The contract's rules for one service; override what the service holds."""

    def export(self, subject_id: str) -> Export:
        raise NotImplementedError

    def erase(self, subject_id: str) -> Erasure:
        raise NotImplementedError

    def erase_many(self, subject_ids: Sequence[str]) -> list[Erasure | Exception]:
        """Each subject as `erase` would, on its own, in order; what one raised stands in its place (the
        others go on). A service overrides it when a batch can share work (one read for all subjects)."""
        results: list[Erasure | Exception] = []
        for subject_id in subject_ids:
            try:
                results.append(self.erase(subject_id))
            except Exception as exc:
                results.append(exc)
        return results

    def rectify(self, subject_id: str, corrections: dict[str, str]) -> Rectification:
        # Most services hold no Identity or Contact fields: identity owns them.
        return Rectification()

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        raise NotImplementedError
