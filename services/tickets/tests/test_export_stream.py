"""Tickets' PersonalData.Export over real gRPC (our server, interceptor and servicer): the answer comes as
a stream of bounded pieces, read from the database as they are sent, and only the rights service may ask."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from kaseum.privacy.v1 import personal_data_pb2 as pd
from kaseum.privacy.v1 import personal_data_pb2_grpc
from servicekit import caller
from servicekit.grpc_server import GrpcServer
from servicekit.personal_data import FULL_NAME, PIECE_BYTES, PIECE_ROWS, PersonalDataApi, joined, pieces
from servicekit.subject_data import Export
from tickets.service import TicketsService

from .conftest import AGENT, ALICE, BOB, who

SECRET = b"s" * 40
PIECE = 7  # rows per piece here, so that a few tickets already take several pieces


@pytest.fixture
def stub(service: TicketsService) -> Iterator[personal_data_pb2_grpc.PersonalDataStub]:
    verifier = caller.TokenVerifier(lambda: {"keys": []}, SECRET)
    server = GrpcServer("127.0.0.1:0", verifier, public_methods=(), workers=2)
    server.add(personal_data_pb2_grpc.add_PersonalDataServicer_to_server,
               PersonalDataApi("tickets", service, piece_rows=PIECE), FULL_NAME)
    server.start({"database": lambda: True})
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield personal_data_pb2_grpc.PersonalDataStub(channel)
    server.stop(0)


def as_service(name: str) -> tuple[tuple[str, str]]:
    return ((caller.SERVICE_HEADER, caller.mint_service_token(SECRET, name)),)


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_a_long_history_comes_in_several_pieces_that_together_are_all_of_it(
        service: TicketsService, stub: personal_data_pb2_grpc.PersonalDataStub) -> None:
    alice, agent = who(ALICE), who(AGENT, "agent")
    tickets = [service.open(alice, f"Help {i}", f"text {i}", "") for i in range(4)]
    for ticket in tickets:
        for j in range(3):
            service.reply(agent, ticket.id, f"answer {j}", False)
    service.open(who(BOB), "Not Alice's", "other text", "")
    expected = {name: sorted(map(tuple, rows)) for name, _, _, rows in service.export(ALICE).tables}

    answer = list(stub.Export(pd.ExportRequest(subject_id=ALICE, request_id="r" * 32),
                              metadata=as_service("rights"), timeout=10))

    assert len(answer) > 2 and all(sum(len(t.rows) for t in piece.tables) <= PIECE for piece in answer)
    assert all(piece.service == "tickets" for piece in answer)
    # The replies table continues from one piece into the next under its own name and columns.
    assert sum(1 for piece in answer for t in piece.tables if t.name == "replies") > 1
    whole = joined(answer)
    got = {t.name: sorted(tuple(r.values) for r in t.rows) for t in whole.tables}
    assert [t.name for t in whole.tables] == ["tickets", "replies", "access_log", "recipient_notices"]
    assert {n: got[n] for n in ("tickets", "replies")} == {n: expected[n] for n in ("tickets", "replies")}
    assert len(got["tickets"]) == 4 and len(got["replies"]) == 12


@pytest.mark.rule("R-SEC-1")
@pytest.mark.notice("13.1.1")
@pytest.mark.parametrize("name", ["consent", "tickets"])
def test_another_service_streaming_export_is_permission_denied(
        service: TicketsService, stub: personal_data_pb2_grpc.PersonalDataStub, name: str) -> None:
    service.open(who(ALICE), "Help", "text", "")
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.Export(pd.ExportRequest(subject_id=ALICE), metadata=as_service(name), timeout=10))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_pieces_are_bounded_in_rows_and_bytes_and_an_empty_export_is_one_piece() -> None:
    rows = [[str(i), "x" * 100] for i in range(2 * PIECE_ROWS + 5)]
    taken = list(pieces("svc", Export([("t", "c", ["n", "text"], iter(rows)), ("empty", "c", ["a"], [])], "a note")))
    assert [sum(len(t.rows) for t in p.tables) for p in taken] == [PIECE_ROWS, PIECE_ROWS, 5]
    assert [p.note for p in taken] == ["a note", "", ""]
    assert [list(r.values) for r in joined(taken).tables[0].rows] == rows
    assert [t.name for t in taken[-1].tables] == ["t", "empty"]
    big = [["y" * (PIECE_BYTES // 3)]] * 10  # split by size long before the row bound
    split = list(pieces("svc", Export([("b", "c", ["v"], big)])))
    assert len(split) == 4 and all(p.ByteSize() < 1.5 * PIECE_BYTES for p in split)
    alone = list(pieces("svc", Export([], "nothing held")))
    assert [(p.service, p.note, len(p.tables)) for p in alone] == [("svc", "nothing held", 0)]


@pytest.mark.rule("R-ACCESS-1")
@pytest.mark.notice("13.1.1")
def test_an_abandoned_export_lets_go_of_its_database_session(service: TicketsService) -> None:
    alice = who(ALICE)
    for i in range(3 * PIECE):
        service.open(alice, f"Help {i}", "text", "")
    pool = service.uow.session_factory.kw["bind"].pool
    token = caller.set_current(caller.Principal("service", "rights", "service"))
    try:
        stream = PersonalDataApi("tickets", service, piece_rows=PIECE).Export(pd.ExportRequest(subject_id=ALICE), None)
        assert pool.checkedout() == 0  # nothing read before a piece is taken
        assert sum(len(t.rows) for t in next(stream).tables) == PIECE
        assert pool.checkedout() == 1  # the tickets are being read, in a session held open
        stream.close()  # the caller went away
        assert pool.checkedout() == 0
    finally:
        caller.reset_current(token)
