"""Combining regions: only released cells travel, a combined cell is a sum or suppressed, and no
subtraction across regions recovers a hidden cell (N §3.3, §4.1.4; R-DATA-3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import jwt
import pytest
from analytics.peers import mint_peer_token, parse_peers, verify_peer_token
from analytics.queries import AnalyticsQueries, ShownCell
from analytics.regions import NOT_A_PEER, RegionalQueries, RegionAnswer, combine, selection
from servicekit.caller import SERVICE_AUDIENCE, mint_service_token
from servicekit.errors import InvalidArgument, Unauthenticated
from servicekit.testing import solve_by_differences

MONDAY = date(2025, 3, 3)
SECRET = b"p" * 40


def answer(region: str, cells: dict[str, tuple[int, int, bool]], k: int = 10) -> RegionAnswer:
    return RegionAnswer(region, k, "daily_users", [(MONDAY, v, u, a, h) for v, (u, a, h) in sorted(cells.items())])


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_combined_cell_is_the_sum_and_any_suppressed_part_suppresses_it() -> None:
    uk = answer("uk", {"": (35, 73, False), "1-9": (0, 0, True), "10-49": (0, 0, True), "250+": (20, 40, False)})
    eu = answer("eu", {"": (23, 40, False), "1-9": (11, 20, False), "10-49": (12, 20, False)})
    assert combine([uk, eu]) == [
        (MONDAY, "", 58, 113, False),
        (MONDAY, "1-9", 0, 0, True), (MONDAY, "10-49", 0, 0, True),
        # Nobody in eu is in 250+ (eu's total is shown, the value absent): the sum is uk's alone.
        (MONDAY, "250+", 20, 40, False)]


@pytest.mark.rule("R-DATA-3")
def test_a_value_missing_where_the_regions_total_is_suppressed_is_unknown_so_suppressed() -> None:
    uk = answer("uk", {"": (30, 60, False), "250+": (30, 60, False)})
    eu = answer("eu", {"": (0, 0, True)})  # e.g. a day not rolled up yet there
    assert combine([uk, eu]) == [(MONDAY, "", 0, 0, True), (MONDAY, "250+", 0, 0, True)]


def naive_combine(answers: list[RegionAnswer], truth: dict[str, dict[str, int]], k: int) -> list[ShownCell]:
    """A naive combination: sums the regions' true counts and suppresses only small sums."""
    values = sorted({v for t in truth.values() for v in t})
    return [(MONDAY, v, n, n, n < k) for v in values for n in [sum(t.get(v, 0) for t in truth.values())]]


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
@pytest.mark.parametrize("combiner", ["naive", "ours"])
def test_a_differencing_attack_across_regions_fails_against_ours(combiner: str) -> None:
    # uk has one small group (1-9: 3 users), hidden with a complement; eu shows all of its groups.
    truth = {"uk": {"": 37, "1-9": 3, "10-49": 14, "250+": 20}, "eu": {"": 23, "1-9": 11, "10-49": 12}}
    uk = answer("uk", {"": (37, 37, False), "1-9": (0, 0, True), "10-49": (0, 0, True), "250+": (20, 20, False)})
    eu = answer("eu", {v: (n, n, False) for v, n in truth["eu"].items()})
    combined = naive_combine([uk, eu], truth, 10) if combiner == "naive" else combine([uk, eu])
    known = {(a.region, v): u for a in (uk, eu) for _, v, u, _, h in a.cells if not h}
    known |= {("all", v): u for _, v, u, _, h in combined if not h}
    values = ["1-9", "10-49", "250+"]
    relations = [((r, ""), [(r, v) for v in values]) for r in ("uk", "eu", "all")]
    relations += [(("all", v), [("uk", v), ("eu", v)]) for v in ["", *values]]
    known.setdefault(("eu", "250+"), 0)  # absent from eu's answer, whose total is shown: none there
    derived = solve_by_differences(known, relations)
    if combiner == "naive":
        assert derived[("uk", "1-9")] == 3  # (uk + eu) − eu: the small group is out
    else:
        assert ("uk", "1-9") not in derived and ("uk", "10-49") not in derived


def test_which_queries_are_combined() -> None:
    assert selection("", "uk", ["eu"]) is None and selection("uk", "uk", ["eu"]) is None
    assert selection("all", "uk", []) is None  # no peers: every region held here, as before
    assert selection("all", "uk", ["us", "eu"]) == ["uk", "eu", "us"]
    assert selection("eu", "uk", ["eu"]) == ["eu"]
    assert selection("fr", "uk", ["eu"]) is None
    assert selection("eu, uk,eu", "uk", ["eu"]) == ["eu", "uk"]
    for bad in ("all,eu", "UK,eu", ",", ",".join(["ab"] * 17)):
        with pytest.raises(InvalidArgument):
            selection(bad, "uk", ["eu"])


def test_peers_are_parsed_from_the_setting() -> None:
    assert parse_peers("eu=analytics.eu.internal:50055, us=10.1.2.3:50055") == {
        "eu": "analytics.eu.internal:50055", "us": "10.1.2.3:50055"}
    assert parse_peers("") == {}
    for bad in ("eu", "eu=host", "EU=h:1", "eu=h:1,eu=h:2"):
        with pytest.raises(ValueError):
            parse_peers(bad)


@pytest.mark.rule("R-DATA-3", "R-SEC-1")
def test_only_a_token_of_the_peer_secret_opens_region_usage() -> None:
    assert verify_peer_token(SECRET, mint_peer_token(SECRET, "eu"), "uk") == "eu"
    refused = [
        mint_peer_token(b"x" * 40, "eu"),                 # another secret
        mint_peer_token(SECRET, "uk"),                    # claims to be the answering region
        mint_peer_token(SECRET, "eu", ttl=-10),           # expired
        mint_service_token(SECRET, "eu"),                 # a service token, even under the same secret
        jwt.encode({"sub": "eu", "aud": SERVICE_AUDIENCE, "exp": 2**40}, SECRET, algorithm="HS256"),
    ]
    for token in refused:
        with pytest.raises(Unauthenticated):
            verify_peer_token(SECRET, token, "uk")
    with pytest.raises(Unauthenticated):  # a region without a peer secret answers no one
        verify_peer_token(b"short", mint_peer_token(b"short", "eu"), "uk")


class FakePeers:
    """Unit-test double of the peer port (the real one is tested over gRPC in tests/e2e)."""

    def __init__(self, answers: dict[str, RegionAnswer | Exception]) -> None:
        self.answers = answers

    def regions(self) -> list[str]:
        return sorted(self.answers)

    def ask(self, region: str, *args: Any) -> RegionAnswer:
        found = self.answers[region]
        if isinstance(found, Exception):
            raise found
        return found


@pytest.mark.rule("R-DATA-3")
@pytest.mark.notice("3.3")
def test_a_region_that_does_not_answer_is_named_never_dropped(queries: AnalyticsQueries, person: Any,
                                                               daily: Any) -> None:
    daily(MONDAY, users=12)
    daily(MONDAY, users=40, feature="*")
    eu = answer("eu", {"": (15, 30, False)})
    regional = RegionalQueries(queries, FakePeers({"eu": eu, "us": TimeoutError("unreachable")}))
    usage = regional.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-03", "day", region="all")
    assert (usage.regions, usage.not_reporting) == (["uk", "eu"], {"us": "unreachable"})
    assert [(p.users, p.suppressed) for p in usage.series] == [(27, False)]
    listed = regional.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-03", "day", region="uk,fr")
    assert listed.not_reporting == {"fr": NOT_A_PEER} and [p.users for p in listed.series] == [12]
    with pytest.raises(InvalidArgument):  # noisy answers are per region
        regional.feature_usage(person(), "tickets.open", "2025-03-03", "2025-03-03", "day", region="all",
                               epsilon=0.5)
