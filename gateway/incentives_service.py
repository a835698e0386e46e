"""Calls to the incentives service (schemes, scorecards, periods and awards), and period ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engage.incentives.v1 import (
    awards_pb2,
    awards_pb2_grpc,
    schemes_pb2,
    schemes_pb2_grpc,
    scorecards_pb2,
    scorecards_pb2_grpc,
)

from gateway.grpc_client import ServiceClient
from gateway.identity import Principal

# Schemes in force are reused this long: a newly published scheme shows within it.
SCHEMES_SECONDS = 30.0


def period_ids(scheme: schemes_pb2.Scheme, at: datetime | None = None, back: int = 3) -> list[str]:
    """Ids of the period containing `at` (default now) and the `back` before it, newest first.

    Months are `YYYY-MM`, quarters `YYYY-Qn`, by the local date in the scheme's time zone
    (the incentives service's calendar)."""
    try:
        zone = ZoneInfo(scheme.calendar.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (at or datetime.now(UTC)).astimezone(zone)
    quarterly = scheme.calendar.period_kind == schemes_pb2.PERIOD_KIND_QUARTER
    span = 3 if quarterly else 1
    index = local.year * 12 + (local.month - 1) // span * span  # months since year 0 of the period's first month
    ids = []
    for step in range(back + 1):
        year, month0 = divmod(index - step * span, 12)
        ids.append(f"{year:04d}-Q{month0 // 3 + 1}" if quarterly else f"{year:04d}-{month0 + 1:02d}")
    return ids


class IncentivesService(ServiceClient):
    def __init__(self, target: str, deadline: float, retry_after: int):
        super().__init__(target, deadline, retry_after)
        self.schemes = schemes_pb2_grpc.SchemeServiceStub(self.channel)
        self.scorecards = scorecards_pb2_grpc.ScorecardServiceStub(self.channel)
        self.awards = awards_pb2_grpc.AwardServiceStub(self.channel)
        self._schemes: list[schemes_pb2.Scheme] = []
        self._schemes_at = -SCHEMES_SECONDS

    async def active_schemes(self, principal: Principal) -> list[schemes_pb2.Scheme]:
        """Schemes in force, reused for SCHEMES_SECONDS (programme leads publish a scheme now and then)."""
        if time.monotonic() - self._schemes_at >= SCHEMES_SECONDS:
            request = schemes_pb2.ListSchemesRequest()
            schemes = await self.every_page(self.schemes.ListSchemes, request, "schemes", principal)
            self._schemes = [s for s in schemes if s.state == schemes_pb2.Scheme.STATE_ACTIVE]
            self._schemes_at = time.monotonic()
        return self._schemes

    async def period_scorecards(self, period: str, principal: Principal) -> list[scorecards_pb2.Scorecard]:
        """Every scorecard of `schemes/{s}/periods/{p}` the caller may read (the service filters)."""
        request = scorecards_pb2.ListScorecardsRequest(parent=period)
        return await self.every_page(self.scorecards.ListScorecards, request, "scorecards", principal)

    async def period_awards(self, period: str, principal: Principal) -> list[awards_pb2.Award]:
        request = awards_pb2.ListAwardsRequest(parent=period)
        return await self.every_page(self.awards.ListAwards, request, "awards", principal)
