"""Request and response bodies: one pydantic model is the validator, the 422 text and the documentation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class Body(BaseModel):
    # Strict: "true" is not a boolean and 5 is not a string; unknown fields are refused.
    model_config = ConfigDict(extra="forbid", strict=True)


class MarketingChoice(Body):
    email: StrictBool = False
    telephone: StrictBool = False


class SignUpBody(Body):
    username: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    company: str = Field(min_length=1, max_length=100)
    job_title: str = Field(min_length=1, max_length=100)
    phone: str = Field(default="", max_length=40)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    marketing: MarketingChoice = MarketingChoice()
    third_party_marketing: StrictBool = False


class SignUpResult(BaseModel):
    id: str
    username: str
    region: str


class LoginBody(Body):
    login: str = Field(min_length=1, max_length=320, description="username or e-mail")
    password: str = Field(min_length=1, max_length=1024)
    time_zone: str = Field(default="", max_length=64, description="the browser's IANA time zone (optional)")


class LoginResult(BaseModel):
    token: str
    expires_at: str
    refresh_token: str
    refresh_expires_at: str


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class ResetRequestBody(Body):
    email: str = Field(min_length=1, max_length=320)


class CurrentSession(BaseModel):
    id: str
    subject_id: str
    role: str
    region: str


class Accepted(BaseModel):
    status: str


class ResetConfirmBody(Body):
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=1024)


class TokenBody(Body):
    token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    id: str
    username: str
    email: str
    first_name: str
    last_name: str
    company: str
    job_title: str
    phone: str
    country: str
    region: str
    role: str
    created_at: str
    email_verified: bool
    # An address asked for by PATCH and not yet confirmed through the link sent to it, or "".
    pending_email: str


class MarketingPatch(Body):
    email: StrictBool | None = None
    telephone: StrictBool | None = None


class MePatch(Body):
    email: str | None = Field(default=None, max_length=320)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    country: str | None = Field(default=None, min_length=2, max_length=2,
                                description="ISO 3166-1 alpha-2; only a country of the account's home region")
    marketing: MarketingPatch | None = Field(default=None, description="as PUT /api/v1/me/preferences")
    third_party_marketing: StrictBool | None = Field(default=None, description="as PUT /api/v1/me/preferences")


class SessionOut(BaseModel):
    id: str
    created_at: str
    last_seen_at: str
    browser: str
    os: str
    current: bool


class SessionList(BaseModel):
    items: list[SessionOut]


class PasswordBody(Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "pending", "resolved", "closed"]


# Notice 3.4 (R-DATA-2): the portal collects no special-category or criminal-offence data; a ticket's free
# text could carry some by accident, so the customer is told not to include it where they write.
SPECIAL_CATEGORY_GUIDANCE = (
    "Please do not include health, racial or ethnic origin, religious or philosophical beliefs, political "
    "opinions, trade union membership, genetic or biometric data, sex life or sexual orientation, or criminal "
    "convictions or offences in a ticket: we do not collect such data (privacy notice 3.4).")


class TicketBody(Body):
    subject: str = Field(min_length=1, max_length=200, description=SPECIAL_CATEGORY_GUIDANCE)
    body: str = Field(min_length=1, max_length=20000, description=SPECIAL_CATEGORY_GUIDANCE)
    product: str = Field(default="", max_length=100)
    priority: Priority = "normal"


class TicketPatch(Body):
    status: Status | None = Field(default=None, description="customers: closed, or open to reopen")
    priority: Priority | None = Field(default=None, description="agents only")
    assignee_id: str | None = Field(default=None, max_length=32, description="agents only; \"\" unassigns")


class ReplyBody(Body):
    body: str = Field(min_length=1, max_length=20000)
    internal: StrictBool = False


class ReplyOut(BaseModel):
    id: str
    author_id: str
    body: str
    internal: bool
    created_at: str


class TicketOut(BaseModel):
    id: str
    status: str
    subject: str
    body: str
    product: str
    requester_id: str
    created_at: str
    updated_at: str
    priority: str
    assignee_id: str | None
    organisation_id: str | None
    closed_at: str | None
    replies: list[ReplyOut] | None = None


class OpenedTicketOut(TicketOut):
    guidance: str = Field(description="what not to write in a ticket (notice 3.4), shown where the customer writes")


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class TicketQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    status: str = ""
    cursor: str = ""
    priority: str = ""
    product: str = Field(default="", max_length=100)
    assignee: str = Field(default="", max_length=32, description='an account id, or "me"')
    organisation: str = Field(default="", max_length=32)
    q: str = Field(default="", max_length=200, description="words to search for; all must match")
    page_size: int = Field(default=0, ge=0, le=100)


class RecipientNoticeOut(BaseModel):
    id: str
    subject_id: str = Field(description="account id of the customer concerned")
    kind: str = Field(description="erasure, rectification or restriction")
    request_id: str
    created_at: str
    acknowledged_at: str | None
    message: str = Field(description="what happened and what to do with any copy held (Art. 19)")


class RecipientNoticePage(BaseModel):
    items: list[RecipientNoticeOut]
    next_cursor: str | None


class RecipientNoticeQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    cursor: str = ""
    page_size: int = Field(default=0, ge=0, le=100)


class Cookies(Body):
    analytics: StrictBool | None = None
    marketing: StrictBool | None = None


class PreferencesBody(Body):
    marketing: MarketingPatch | None = None
    third_party_marketing: StrictBool | None = None
    cookies: Cookies | None = None


class PreferencesOut(BaseModel):
    marketing: dict[str, bool]
    third_party_marketing: bool
    cookies: dict[str, bool] = Field(description="analytics and marketing; strictly necessary cookies are always on")
    notice_version: str
    objected: bool = Field(default=False, description="the person objected to direct marketing (every channel)")
    reconsent_required: bool = Field(default=False, description="a newer notice changed the marketing purpose: "
                                                                "marketing stays off until consent is given again")
    last_notice_seen: str = Field(default="", description="version of the notice last sent to the person")
    gpc: bool = Field(default=False, description="the request carried Sec-GPC: 1, applied as an opt-out of "
                                                 "third-party sharing and marketing cookies")


# --- consent administration (campaigns, notices, opt-outs recorded by staff) -------------


class CampaignBody(Body):
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=50000)
    channel: str = Field(default="email", description="email")
    purpose: str = Field(description="marketing or service")
    product: str = Field(default="", max_length=100, description="only customers holding this product")
    kind: str = Field(default="campaign", description="campaign, or product_update: an update notice for "
                                                      "`product` (service to its holders, marketing to others)")


class CampaignOut(BaseModel):
    id: str
    audience: int
    eligible: int
    suppressed: int


class NoticeBody(Body):
    version: str = Field(min_length=1, max_length=20)
    document: str = Field(default="privacy", description="privacy or terms")
    changes_purpose: StrictBool = Field(default=False, description="marketing consents must be asked again")
    summary: str = Field(default="", max_length=5000)


class NoticeOut(BaseModel):
    version: str
    recipients: int


class OptOutBody(Body):
    subject_id: str = Field(min_length=1, max_length=64)
    channels: list[str] = Field(default_factory=list, max_length=3,
                                description="email, telephone, third_party; empty for every marketing channel")
    objection: StrictBool = Field(default=False, description="an objection to direct marketing (Art. 21(2)): "
                                                             "every channel, and the addresses are suppressed")


class ProductHoldingBody(Body):
    subject_id: str = Field(min_length=1, max_length=64)
    product: str = Field(min_length=1, max_length=100)


class UnsubscribeQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    token: str = Field(min_length=1, max_length=1000)


class UnsubscribeBody(Body):
    token: str = Field(min_length=1, max_length=1000)


class UnsubscribeOut(BaseModel):
    status: str = Field(description="unsubscribed")
    channel: str
    already: bool


class StaffBody(Body):
    role: str
    username: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    organisation: str = Field(default="", max_length=100)
    country: str = Field(default="", max_length=2)


class StaffOut(BaseModel):
    id: str
    username: str
    role: str


class UsageQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    feature: str = Field(min_length=1, max_length=100)
    from_: str = Field(alias="from", min_length=10, max_length=10)
    to: str = Field(min_length=10, max_length=10)
    granularity: str = "day"
    # "" (none), "product" or "org_size_band": fixed breakdowns only, no filters.
    dimension: str = Field(default="", max_length=20)
    # "" (this region), a region code, "all" (this region and every peer region, combined) or a
    # comma-separated list of region codes, combined.
    region: str = Field(default="", max_length=150)
    # 0 for exact counts with suppression; > 0 spends that much differential-privacy budget.
    epsilon: float = Field(default=0.0, ge=0.0, le=100.0)


class UsageOut(BaseModel):
    series: list[dict[str, object]]
    dimension: str = ""
    measure: str = Field(default="daily_users", description=(
        "what `users` counts: daily_users (per day), or peak_daily_users (per week or month: the busiest "
        "day's distinct users; pseudonyms change daily, so distinct users over a week cannot be counted)"))
    min_group_size: int = 10
    epsilon_spent: float = 0.0
    budget_remaining: float = 0.0
    regions: list[str] | None = Field(default=None, description=(
        "set when regions were combined: the regions whose released cells were summed (a combined cell "
        "is suppressed when any region's part is)"))
    not_reporting: dict[str, str] | None = Field(default=None, description=(
        "regions asked for that did not answer, with why; their cells are not in the answer"))


class FeaturesOut(BaseModel):
    features: list[str]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


# --- organisations and reseller relationships (admin; section 5.1.1) -------------------


class OrganisationBody(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="customer or reseller")
    countries: list[str] = Field(default_factory=list, max_length=250,
                                 description="resellers only: ISO 3166-1 alpha-2 countries it operates in")


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: str
    countries: list[str]
    customer_organisation_ids: list[str]
    created_at: str
    ticket_sharing: bool
    size_band: str = Field(default="", description=(
        "customers: employees as a band, 1-9, 10-49, 50-249 or 250+ (\"\" when not set)"))


class OrganisationPage(BaseModel):
    items: list[OrganisationOut]
    next_cursor: str | None


class OrganisationQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)
    kind: str = Field(default="", description="customer or reseller (all if empty)")
    cursor: str = ""


class CountriesBody(Body):
    countries: list[str] = Field(max_length=250, description="the complete list of ISO 3166-1 alpha-2 countries")


class TicketSharingBody(Body):
    enabled: bool = Field(description="true: the organisation's members see each other's tickets")


class OrganisationSizeBody(Body):
    # A band, or a declared employee count of which only the band is kept; neither clears it.
    size_band: str = Field(default="", max_length=8, description="1-9, 10-49, 50-249 or 250+")
    employees: int = Field(default=0, ge=0, le=10_000_000, description="a head count instead of a band")


class ResellerCustomerBody(Body):
    customer_organisation_id: str = Field(min_length=1, max_length=64)


class ResellerCustomerOut(BaseModel):
    reseller_id: str
    customer_organisation_id: str
    since: str
