"""ScorecardService and AwardService: scorecards, period close, award decisions."""

from __future__ import annotations

import re

import grpc
from engage.incentives.v1 import awards_pb2, awards_pb2_grpc, scorecards_pb2, scorecards_pb2_grpc

from services.incentives import messages
from services.incentives.api.behaviours import required_text
from services.incentives.app import awards as uc_awards
from services.incentives.app import scorecards as uc
from services.incentives.app.directory import SchemeCache
from services.incentives.app.scorecard_board import ScorecardBoard
from services.incentives.domain.model import AwardState
from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.resources import ID_PATTERN, page_of

_PERIOD = re.compile(r"^schemes/([^/]+)/periods/([^/]+)$")
_CHILD = re.compile(r"^schemes/([^/]+)/periods/([^/]+)/(scorecards|awards|teams)/([^/]+)$")


def period_name(name: str, field: str) -> tuple[str, str]:
    m = _PERIOD.match(name)
    if not m or not ID_PATTERN.match(m.group(1)):
        raise invalid(field, f"must be schemes/{{scheme}}/periods/{{period}}, got {name!r}")
    return m.group(1), m.group(2)


def child_name(name: str, collection: str, field: str) -> tuple[str, str, str]:
    m = _CHILD.match(name)
    if not m or m.group(3) != collection or not ID_PATTERN.match(m.group(1)) or not ID_PATTERN.match(m.group(4)):
        what = "org_unit" if collection == "teams" else "person"
        raise invalid(field, f"must be schemes/{{scheme}}/periods/{{period}}/{collection}/{{{what}}}, got {name!r}")
    return m.group(1), m.group(2), m.group(4)


def _scorecard_out(v: uc.ScorecardView) -> scorecards_pb2.Scorecard:
    if v.message is None:  # built once per view: the board serves one view many times (nobody mutates it)
        v.message = _build(v)
    return v.message  # type: ignore[no-any-return]


def _build(v: uc.ScorecardView) -> scorecards_pb2.Scorecard:
    card = messages.scorecard_out(
        v.scheme_id, v.period, v.person_id, v.version, v.attainment, v.payout, v.currency, v.final, v.computed
    )
    if v.score is not None:
        messages.add_score_lines(card, v.score)
    else:
        messages.add_frozen_lines(card, v.lines)
    return card


def _period_out(v: uc_awards.PeriodView) -> awards_pb2.Period:
    return messages.period_out(v.scheme_id, v.period, v.version, v.row, v.award_count, v.total, v.budget, v.currency)


class ScorecardServicer(scorecards_pb2_grpc.ScorecardServiceServicer):
    def __init__(self, db: Database, minimum_group_size: int, board: ScorecardBoard | None = None):
        self.db = db
        self.minimum_group_size = minimum_group_size
        self.schemes = SchemeCache()
        self.board = board
        if board is not None:
            board.prepare = _scorecard_out

    async def GetScorecard(
        self, request: scorecards_pb2.GetScorecardRequest, context: grpc.aio.ServicerContext
    ) -> scorecards_pb2.Scorecard:
        scheme_id, period_id, person_id = child_name(request.name, "scorecards", "name")
        view = await uc.get_scorecard(self.db, self.schemes, scheme_id, period_id, person_id, self.board)
        return _scorecard_out(view)

    async def ListScorecards(
        self, request: scorecards_pb2.ListScorecardsRequest, context: grpc.aio.ServicerContext
    ) -> scorecards_pb2.ListScorecardsResponse:
        scheme_id, period_id = period_name(request.parent, "parent")
        page = page_of(request.page_size, request.page_token, parent=request.parent)
        views = await uc.list_scorecards(self.db, scheme_id, period_id, page.size, page.after, self.board)
        return scorecards_pb2.ListScorecardsResponse(
            scorecards=[_scorecard_out(v) for v in views],
            next_page_token=page.next_token(views[-1].person_id if views else None, len(views)),
        )

    async def GetTeamSummary(
        self, request: scorecards_pb2.GetTeamSummaryRequest, context: grpc.aio.ServicerContext
    ) -> scorecards_pb2.TeamSummary:
        scheme_id, period_id, unit_id = child_name(request.name, "teams", "name")
        v = await uc.team_summary(self.db, scheme_id, period_id, unit_id, self.minimum_group_size)
        return scorecards_pb2.TeamSummary(
            name=request.name,
            org_unit=f"orgUnits/{v.unit_id}",
            member_count=v.member_count,
            minimum_group_size=v.minimum_group_size,
            suppressed=v.suppressed,
            average_attainment=v.average_attainment,
            measures=[
                scorecards_pb2.TeamMeasure(
                    measure=m, display_name=name, average_value=value, average_attainment=attainment
                )
                for m, name, value, attainment in v.measures
            ],
            scheme_version=v.version,
        )


class AwardServicer(awards_pb2_grpc.AwardServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def GetPeriod(
        self, request: awards_pb2.GetPeriodRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.Period:
        return _period_out(await uc_awards.get_period(self.db, *period_name(request.name, "name")))

    async def ClosePeriod(
        self, request: awards_pb2.ClosePeriodRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.Period:
        return _period_out(await uc_awards.close_period(self.db, *period_name(request.name, "name")))

    async def GetAward(
        self, request: awards_pb2.GetAwardRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.Award:
        return messages.award_out(await uc_awards.get_award(self.db, *child_name(request.name, "awards", "name")))

    async def ListAwards(
        self, request: awards_pb2.ListAwardsRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.ListAwardsResponse:
        scheme_id, period_id = period_name(request.parent, "parent")
        state = (
            messages.enum_in(AwardState, awards_pb2.Award.State, request.state, "STATE_", "state")
            if request.state
            else None
        )
        page = page_of(request.page_size, request.page_token, parent=request.parent, state=state)
        rows = await uc_awards.list_awards(self.db, scheme_id, period_id, state, page.size, page.after)
        return awards_pb2.ListAwardsResponse(
            awards=[messages.award_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].person_id if rows else None, len(rows)),
        )

    async def AdjustAward(
        self, request: awards_pb2.AdjustAwardRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.Award:
        scheme_id, period_id, person_id = child_name(request.name, "awards", "name")
        reason = required_text(request.reason, "reason", 2000)
        current = await uc_awards.get_award(self.db, scheme_id, period_id, person_id)
        amount = messages.amount_in(request.amount, current.currency, "amount")
        row = await uc_awards.adjust_award(self.db, scheme_id, period_id, person_id, amount, reason, request.etag)
        return messages.award_out(row)

    async def ApproveAward(
        self, request: awards_pb2.ApproveAwardRequest, context: grpc.aio.ServicerContext
    ) -> awards_pb2.Award:
        scheme_id, period_id, person_id = child_name(request.name, "awards", "name")
        return messages.award_out(await uc_awards.approve_award(self.db, scheme_id, period_id, person_id, request.etag))
