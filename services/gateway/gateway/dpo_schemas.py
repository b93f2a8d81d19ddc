"""Request and response bodies of the DPO's governance routes (api/dpo.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .schemas import Body


class Query(Body):
    model_config = ConfigDict(extra="forbid", strict=False)


class AuditQuery(Query):
    subject_id: str = Field(default="", max_length=64)
    actor_id: str = Field(default="", max_length=64)
    organisation_id: str = Field(default="", max_length=64)
    from_: str = Field(default="", alias="from", max_length=40, description="RFC 3339 time, inclusive")
    to: str = Field(default="", max_length=40, description="RFC 3339 time, exclusive")
    cursor: str = Field(default="", max_length=2000)


class AccessedQuery(Query):
    actor_id: str = Field(default="", max_length=64)
    organisation_id: str = Field(default="", max_length=64)
    from_: str = Field(alias="from", min_length=1, max_length=40, description="RFC 3339 time, inclusive")
    to: str = Field(min_length=1, max_length=40, description="RFC 3339 time, exclusive")


class VerifyQuery(Query):
    chain: str = Field(default="audit", description="audit or transfers")


class TransfersQuery(Query):
    from_: str = Field(default="", alias="from", max_length=40)
    to: str = Field(default="", max_length=40)


class HoldBody(Body):
    scope: str = Field(description="subject or ticket")
    target_id: str = Field(min_length=1, max_length=32, description="the subject id or ticket id")
    reason_code: str = Field(description="complaint, litigation, regulator_inquiry or other")
    note: str = Field(default="", max_length=2000)
    review_at: str = Field(min_length=10, max_length=40, description="RFC 3339 time or date, in the future")


class HoldsQuery(Query):
    include_released: bool = False
    target_id: str = Field(default="", max_length=32)


class HoldOut(BaseModel):
    id: str
    scope: str
    target_id: str
    reason_code: str
    note: str
    review_at: str
    placed_at: str
    placed_by: str
    released_at: str | None
    released_by: str


class HoldList(BaseModel):
    items: list[HoldOut]


class Report(BaseModel):
    """A deployment-wide answer; `not_reporting` names services that did not answer, and why."""

    model_config = ConfigDict(extra="allow")
    not_reporting: dict[str, str] = {}


Json = dict[str, Any]
