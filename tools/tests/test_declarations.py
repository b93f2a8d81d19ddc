"""Processing declarations cannot drift from the code: every column of every service's models names its
category, and the record of processing lists every category some model stores.

To cover a service, add its name to SERVICES once its models declare categories and its
`<service>/governance.py` holds its `DECLARATION` (servicekit/declarations.py says how).
"""

from __future__ import annotations

import importlib

import pytest
from kaseum.privacy.v1 import governance_pb2 as pb
from servicekit import ropa
from servicekit.declarations import NOT_PERSONAL, ServiceDeclaration, catalogue, columns_of, undeclared

# consent and analytics join when their models are declared.
SERVICES = ["identity", "tickets", "consent", "rights", "analytics"]


def declaration(service: str) -> ServiceDeclaration:
    found: ServiceDeclaration = importlib.import_module(f"{service}.governance").DECLARATION
    return found


@pytest.mark.notice("3.2.1")
@pytest.mark.notice("3.2.2")
@pytest.mark.notice("3.2.3")
@pytest.mark.notice("3.2.4")
@pytest.mark.notice("3.2.5")
@pytest.mark.notice("3.2.6")
@pytest.mark.rule("R-DATA-1")
@pytest.mark.parametrize("service", SERVICES)
def test_every_column_declares_a_known_category(service: str) -> None:
    models = importlib.import_module(f"{service}.models")
    assert undeclared(models.Base.metadata) == [], f"{service}: give these columns info={{'category': …}}"
    assert declaration(service).metadata is models.Base.metadata


@pytest.mark.rule("R-PURPOSE-1")
@pytest.mark.rule("R-RET-1")
@pytest.mark.parametrize("service", SERVICES)
def test_every_stored_category_has_a_purpose_and_a_retention_rule(service: str) -> None:
    assert declaration(service).problems() == []


def test_an_undeclared_column_is_caught() -> None:
    from sqlalchemy import Column, MetaData, String, Table

    metadata = MetaData()
    Table("people", metadata, Column("id", String, info={"category": "none"}), Column("nickname", String),
          Column("shoe_size", String, info={"category": "3.9.9"}))
    assert undeclared(metadata) == ["people.nickname: no category", "people.shoe_size: unknown category '3.9.9'"]


@pytest.mark.rule("R-PURPOSE-1")
def test_the_record_of_processing_lists_every_category_some_model_stores() -> None:
    messages = []
    for service in SERVICES:
        d = declaration(service)
        messages.append(pb.Declarations(
            service=service,
            columns=[pb.ColumnDeclaration(table=t, column=c, category=cat) for t, c, cat in columns_of(d.metadata)],
            purposes=[pb.PurposeDeclaration(purpose=p.clause, categories=list(p.categories)) for p in d.purposes]))
    record = ropa.build(messages, {})
    listed = {c["code"]: c for c in record["categories"]}
    stored = {cat for m in messages for c in m.columns if (cat := c.category) != NOT_PERSONAL}
    for code in stored:
        assert listed[code]["stored_in"], code
    text = ropa.to_text(record)
    for code in stored:
        assert catalogue()["categories"][code]["name"] in text
    for clause in ("4.1.1", "4.1.2", "4.1.3", "4.1.4", "4.1.5", "5.1.1", "5.1.2"):
        assert clause in text
