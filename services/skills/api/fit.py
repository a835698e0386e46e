"""RoleFitService: role fit, candidates, team skill matrix, gap report and skill trends."""

from __future__ import annotations

from datetime import date

import grpc
from engage.skills.v1 import fit_pb2, fit_pb2_grpc

from services.platform.db import Database, utcnow
from services.platform.errors import invalid
from services.platform.resources import page_of, parse_name
from services.skills import messages
from services.skills.api.fields import names_in, offset_of
from services.skills.app import fit as uc
from services.skills.app import trends
from services.skills.domain.model import normalized_value
from services.skills.domain.trends import trend_days
from services.skills.store.fit_view import FitView


def _role_name(name: str, field: str) -> tuple[str, int | None]:
    """`roles/x` or `roles/x@3`."""
    base, _, version = name.partition("@")
    role_id = parse_name(base, "roles", field)
    if not version:
        return role_id, None
    if not version.isdigit() or int(version) < 1:
        raise invalid(field, "version after '@' must be a positive number")
    return role_id, int(version)


def _gap_out(g: uc.SkillGapCount, top: int) -> fit_pb2.SkillGap:
    average = g.gap_total / g.below if g.below else 0.0
    return fit_pb2.SkillGap(
        skill=f"skills/{g.skill}",
        role=f"roles/{g.role}" if g.role else "",
        required_level=g.required,
        mandatory=g.mandatory,
        holders_below=g.below,
        holders_missing=g.missing,
        average_gap=round(average, 4),
        normalized_required_level=normalized_value(g.required, top),
        normalized_average_gap=normalized_value(average, top),
    )


MAX_TREND_POINTS = 1000


def _day_in(value: str, field: str, default: date | None = None) -> date:
    if not value and default is not None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "must be a date as YYYY-MM-DD") from None


class RoleFitServicer(fit_pb2_grpc.RoleFitServiceServicer):
    def __init__(self, db: Database, view: FitView | None = None):
        self.db = db
        self.view = view

    async def GetRoleFit(
        self, request: fit_pb2.GetRoleFitRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.RoleFit:
        person_id = parse_name(request.person, "people", "person")
        role_id, version = _role_name(request.role, "role")
        used, fit, tops = await uc.get_role_fit(self.db, person_id, role_id, version, self.view)
        return messages.role_fit_out(person_id, role_id, used, fit, tops)

    async def FindCandidates(
        self, request: fit_pb2.FindCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.FindCandidatesResponse:
        role_id = parse_name(request.role, "roles", "role")
        unit_id = parse_name(request.org_unit, "orgUnits", "org_unit", required=False)
        if not 0.0 <= request.min_score <= 1.0:
            raise invalid("min_score", "must be between 0 and 1")
        query = uc.CandidateQuery(
            role_id, unit_id, request.min_score, request.fits_only, request.include_on_leave, request.exclude_holders
        )
        page = page_of(request.page_size, request.page_token, q=query)
        offset = offset_of(page)
        version, found, tops = await uc.find_candidates(self.db, query, offset, page.size)
        return fit_pb2.FindCandidatesResponse(
            role_version=version,
            candidates=[
                fit_pb2.Candidate(
                    person=f"people/{c.person_id}",
                    org_unit=f"orgUnits/{c.org_unit_id}",
                    score=c.fit.score,
                    fits=c.fit.fits,
                    gaps=[messages.skill_fit_out(f, tops.get(f.skill, 0)) for f in c.fit.skills if f.gap > 0],
                    surplus=c.fit.surplus,
                )
                for c in found
            ],
            next_page_token=page.next_token(offset + len(found), len(found)),
        )

    async def GetTeamSkillMatrix(
        self, request: fit_pb2.GetTeamSkillMatrixRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.TeamSkillMatrix:
        unit_id = parse_name(request.org_unit, "orgUnits", "org_unit")
        skills = names_in(list(request.skills), "skills", "skills")
        columns, rows, tops = await uc.team_matrix(self.db, unit_id, request.include_descendants, skills)
        return fit_pb2.TeamSkillMatrix(
            org_unit=f"orgUnits/{unit_id}",
            skills=[f"skills/{k}" for k in columns],
            rows=[
                fit_pb2.SkillMatrixRow(
                    person=f"people/{r.person_id}",
                    org_unit=f"orgUnits/{r.org_unit_id}",
                    cells=[
                        fit_pb2.SkillCell(
                            skill=f"skills/{k}",
                            level=level,
                            claimed_level=claimed,
                            required_level=required,
                            gap=max(0, required - level),
                            normalized_level=normalized_value(level, tops.get(k, 0)),
                            normalized_required_level=normalized_value(required, tops.get(k, 0)),
                        )
                        for k, level, claimed, required in r.cells
                    ],
                    roles=[
                        fit_pb2.HeldRoleFit(
                            role=f"roles/{role}",
                            score=fit.score,
                            fits=fit.fits,
                            mandatory_gaps=[f"skills/{s}" for s in fit.mandatory_gaps],
                        )
                        for role, fit in r.roles
                    ],
                )
                for r in rows
            ],
        )

    async def GetGapReport(
        self, request: fit_pb2.GetGapReportRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.GapReport:
        role_id = parse_name(request.role, "roles", "role", required=False)
        unit_id = parse_name(request.org_unit, "orgUnits", "org_unit", required=False)
        top = request.top or 10
        if not 1 <= top <= 100:
            raise invalid("top", "must be 1-100")
        report, tops = await uc.gap_report(self.db, role_id, unit_id)
        return fit_pb2.GapReport(
            holder_count=sum(r.holders for r in report),
            holders_missing_mandatory=sum(r.missing_mandatory for r in report),
            roles=[
                fit_pb2.RoleGapSummary(
                    role=f"roles/{r.role_id}",
                    role_version=r.version,
                    holder_count=r.holders,
                    holders_missing_mandatory=r.missing_mandatory,
                    average_score=round(r.score_total / r.holders, 6) if r.holders else 0.0,
                    gaps=[
                        _gap_out(g, tops.get(g.skill, 0))
                        for g in sorted((r.gaps or {}).values(), key=lambda g: (-g.below, g.skill))
                        if g.below
                    ],
                )
                for r in report
            ],
            most_missing=[_gap_out(g, tops.get(g.skill, 0)) for g in uc.most_missing(report, top)],
        )

    async def GetTeamSkillTrend(
        self, request: fit_pb2.GetTeamSkillTrendRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.TeamSkillTrend:
        unit_id = parse_name(request.org_unit, "orgUnits", "org_unit")
        skill_id = parse_name(request.skill, "skills", "skill")
        start = _day_in(request.start_date, "start_date")
        end = _day_in(request.end_date, "end_date", utcnow().date())
        interval = request.interval_days or 1
        if not 1 <= interval <= 3650:
            raise invalid("interval_days", "must be 1-3650")
        if end < start:
            raise invalid("end_date", "must be on or after start_date")
        if (end - start).days // interval + 1 > MAX_TREND_POINTS:
            raise invalid("interval_days", f"gives more than {MAX_TREND_POINTS} points: choose a longer interval")
        points = await trends.team_trend(self.db, unit_id, skill_id, trend_days(start, end, interval))
        return fit_pb2.TeamSkillTrend(
            org_unit=f"orgUnits/{unit_id}",
            skill=f"skills/{skill_id}",
            points=[
                fit_pb2.SkillTrendPoint(
                    date=p.day.isoformat(),
                    people_with_level=p.people,
                    average_level=p.average_level,
                    average_normalized_level=p.average_normalized,
                    level_counts=p.level_counts,
                )
                for p in points
            ],
        )
