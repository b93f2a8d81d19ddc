"""EraseMany, the contract's batch of erasures: each subject on its own, answered in order (a unit test of
that one rule, with fake rules; the services' own erasures are tested over real gRPC in tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kaseum.privacy.v1 import personal_data_pb2 as pd
from servicekit import caller
from servicekit.caller import Principal
from servicekit.errors import InvalidArgument, PermissionDenied, Unavailable
from servicekit.personal_data import MAX_ERASURES, PersonalDataApi
from servicekit.subject_data import Erasure, SubjectDataRules


class Rules(SubjectDataRules):
    def __init__(self) -> None:
        self.erased: list[str] = []

    def erase(self, subject_id: str) -> Erasure:
        if subject_id == "away":
            raise Unavailable("cannot reach identity; try again")
        if subject_id == "bug":
            raise RuntimeError("a bug")
        self.erased.append(subject_id)
        return Erasure(0 if subject_id == "nobody" else 3, [("access log", "kept by law")])


@pytest.fixture
def as_rights() -> Iterator[None]:
    token = caller.set_current(Principal("service", "rights", "service"))
    yield
    caller.reset_current(token)


def many(*subjects: str) -> pd.EraseManyRequest:
    return pd.EraseManyRequest(erasures=[pd.EraseRequest(subject_id=s, request_id="r-" + s) for s in subjects])


@pytest.mark.notice("13.1.3")
@pytest.mark.rule("R-ERASE-1")
def test_each_subject_is_erased_on_its_own_and_answered_in_order(as_rights: None) -> None:
    rules, scrubs = Rules(), []
    api = PersonalDataApi("tickets", rules, after_erase=lambda: scrubs.append(1))
    answer = api.EraseMany(many("a", "away", "b", "bug", "nobody"), None)
    assert [(r.subject_id, r.error, r.erased.erased_rows) for r in answer.results] == [
        ("a", "", 3), ("away", "UNAVAILABLE", 0), ("b", "", 3), ("bug", "INTERNAL", 0), ("nobody", "", 0)]
    assert [(k.what, k.reason) for k in answer.results[0].erased.kept] == [("access log", "kept by law")]
    assert not answer.results[1].HasField("erased")
    assert rules.erased == ["a", "b", "nobody"]  # the failures stopped no one after them
    assert scrubs == [1]  # one scrub of the files for the batch
    assert PersonalDataApi("tickets", Rules()).EraseMany(many(), None).results == []


@pytest.mark.notice("13.1.3")
def test_a_batch_is_bounded_and_only_the_rights_service_may_send_one(as_rights: None) -> None:
    api = PersonalDataApi("tickets", Rules())
    with pytest.raises(InvalidArgument):
        api.EraseMany(many(*[str(n) for n in range(MAX_ERASURES + 1)]), None)
    token = caller.set_current(Principal("person", "p" * 32, "customer", "uk", "s" * 32))
    try:
        with pytest.raises(PermissionDenied):
            api.EraseMany(many("a"), None)
    finally:
        caller.reset_current(token)
