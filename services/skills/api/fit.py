"""RoleFitService: role fit, candidates, team skill matrix and gap report."""

from __future__ import annotations

import grpc
from engage.skills.v1 import fit_pb2, fit_pb2_grpc

from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.resources import page_of, parse_name
from services.skills import messages
from services.skills.api.fields import names_in, offset_of
from services.skills.app import fit as uc


def _role_name(name: str, field: str) -> tuple[str, int | None]:
    """`roles/x` or `roles/x@3`."""
    base, _, version = name.partition("@")
    role_id = parse_name(base, "roles", field)
    if not version:
        return role_id, None
    if not version.isdigit() or int(version) < 1:
        raise invalid(field, "version after '@' must be a positive number")
    return role_id, int(version)


def _gap_out(g: uc.SkillGapCount) -> fit_pb2.SkillGap:
    return fit_pb2.SkillGap(
        skill=f"skills/{g.skill}",
        role=f"roles/{g.role}" if g.role else "",
        required_level=g.required,
        mandatory=g.mandatory,
        holders_below=g.below,
        holders_missing=g.missing,
        average_gap=round(g.gap_total / g.below, 4) if g.below else 0.0,
    )


class RoleFitServicer(fit_pb2_grpc.RoleFitServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def GetRoleFit(
        self, request: fit_pb2.GetRoleFitRequest, context: grpc.aio.ServicerContext
    ) -> fit_pb2.RoleFit:
        person_id = parse_name(request.person, "people", "person")
        role_id, version = _role_name(request.role, "role")
        used, fit = await uc.get_role_fit(self.db, person_id, role_id, version)
        return messages.role_fit_out(person_id, role_id, used, fit)

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
        version, found = await uc.find_candidates(self.db, query, offset, page.size)
        return fit_pb2.FindCandidatesResponse(
            role_version=version,
            candidates=[
                fit_pb2.Candidate(
                    person=f"people/{c.person_id}",
                    org_unit=f"orgUnits/{c.org_unit_id}",
                    score=c.fit.score,
                    fits=c.fit.fits,
                    gaps=[messages.skill_fit_out(f) for f in c.fit.skills if f.gap > 0],
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
        columns, rows = await uc.team_matrix(self.db, unit_id, request.include_descendants, skills)
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
        report = await uc.gap_report(self.db, role_id, unit_id)
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
                        _gap_out(g)
                        for g in sorted((r.gaps or {}).values(), key=lambda g: (-g.below, g.skill))
                        if g.below
                    ],
                )
                for r in report
            ],
            most_missing=[_gap_out(g) for g in uc.most_missing(report, top)],
        )
