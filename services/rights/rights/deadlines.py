"""The statutory clock of a rights request (UK GDPR Art. 12(3); R-RIGHTS-2). Pure functions only."""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta


def due_date(received_at: datetime) -> datetime:
    """The corresponding calendar date one month after receipt, or that month's last day if none.

    relativedelta clips to the end of the month (31 Jan -> 28/29 Feb, 31 Mar -> 30 Apr), which is
    how the ICO reads "one month"; plain timedelta arithmetic would not. The time of day is kept,
    so a request counts as overdue from that moment of the due day: earlier than the end of the
    day, never later. Callers pass UTC; a UK receipt just after local midnight then lands on the
    previous UTC day, which again makes the deadline earlier, not later.
    """
    return received_at + relativedelta(months=1)
