"""Rights' settings: the common ones plus the default page size of a listing."""

from __future__ import annotations

from pydantic import Field
from servicekit.settings import ServiceSettings


class RightsSettings(ServiceSettings):
    # Used when a ListRequests call leaves page_size at 0 (the proto's documented default).
    page_size_default: int = Field(default=20, ge=1, le=100)
    # How often a replica looks for due request steps (a step filed now starts within this).
    orchestrator_interval_seconds: float = Field(default=0.5, gt=0)
    # Art. 18(3): how long before a restriction is lifted the subject is told.
    restriction_lift_notice_hours: float = Field(default=24.0, ge=0)
    # A CA bundle to trust for other controllers' portability endpoints, beside the system's; "" for none.
    portability_ca_file: str = ""
    # How often open requests are checked for a due date within a week (the DPO is warned once).
    due_soon_check_seconds: float = Field(default=3600.0, gt=0)
