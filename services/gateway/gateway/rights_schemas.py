"""Request and response bodies of the rights routes (api/rights.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from .schemas import Body


class RightsBody(Body):
    kind: str = Field(description="access, rectification, erasure, objection, restriction, "
                                  "portability or withdraw_consent")
    details: str = Field(default="", max_length=5000)
    purpose: str = Field(default="", max_length=20, description="objection only: direct_marketing (default), "
                                                                 "analytics, profiling or all")
    corrections: dict[str, str] = Field(default_factory=dict, max_length=20,
                                        description="rectification only: field → corrected value (first_name, "
                                                    "last_name, company, job_title, email, phone, country)")
    destination_url: str = Field(default="", max_length=2000, description="portability only: another "
                                 "controller's https:// endpoint to receive the data (through the transfer policy)")
    destination_country: str = Field(default="", max_length=2, description="that controller's country (ISO "
                                                                           "3166-1 alpha-2)")


class RightsQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    status: str = ""
    overdue: bool = False
    cursor: str = ""


class OnBehalfBody(Body):
    email: str = Field(min_length=3, max_length=320, description="the address the request came from")
    kind: str = Field(description="as for POST /api/v1/rights-requests")
    details: str = Field(default="", max_length=5000)
    purpose: str = Field(default="", max_length=20)
    corrections: dict[str, str] = Field(default_factory=dict, max_length=20)


class VerifyBody(Body):
    code: str = Field(default="", max_length=12, description="the code the subject returned; empty: send a new one")


class ClockBody(Body):
    stop: StrictBool = Field(description="true: waiting for the subject's clarification; false: answered")


class ExtendBody(Body):
    months: StrictInt = Field(ge=1, le=2, description="further months: 1 or 2, once")
    reason: str = Field(min_length=1, max_length=2000, description="told to the subject")


class RefuseBody(Body):
    reason: str = Field(min_length=1, max_length=2000, description="told to the subject, with the right to "
                                                                   "complain to the ICO")


class StepOut(BaseModel):
    service: str
    operation: str
    status: str = Field(description="pending, done or failed (waits for the DPO's retry)")
    attempts: int
    error: str | None = Field(description="the last failure's code")
    next_attempt_at: str | None
    outcome: str
    kept: list[str] = Field(description="what the service kept, and why")


class RightsOut(BaseModel):
    id: str
    kind: str
    status: str
    received_at: str
    due_at: str
    completed_at: str | None
    steps: list[StepOut]
    purpose: str | None
    extension_reason: str | None
    refusal_reason: str | None
    complaint: str | None = Field(description="with a refusal: how to complain to the ICO")
    export_url: str | None = Field(description="access and portability: the ZIP, for the requester, until "
                                               "export_expires_at")
    export_expires_at: str | None
    channel: str = Field(description="portal, or dpo (came by e-mail, verified by a one-time code)")
    due_soon: bool = Field(description="open and due within a week")
    clock_stopped_at: str | None = Field(description="the clock stands still waiting for clarification")
    lift_at: str | None = Field(description="a restriction being lifted: when (the subject is told first)")
    destination: dict[str, str] | None = Field(description="portability to another controller: host and country")


class RightsPage(BaseModel):
    items: list[RightsOut]
    next_cursor: str | None
