"""Calls to the skills service (catalogue, assessments, role fit)."""

from __future__ import annotations

import time

from engage.skills.v1 import (
    assessments_pb2,
    assessments_pb2_grpc,
    catalogue_pb2,
    catalogue_pb2_grpc,
    fit_pb2,
    fit_pb2_grpc,
)

from gateway.grpc_client import ServiceClient
from gateway.identity import Principal

# The catalogue changes rarely (HR and programme leads edit it); its names are reused this long.
CATALOGUE_SECONDS = 30.0


class SkillsService(ServiceClient):
    def __init__(self, target: str, deadline: float, retry_after: int):
        super().__init__(target, deadline, retry_after)
        self.catalogue = catalogue_pb2_grpc.CatalogueServiceStub(self.channel)
        self.assessments = assessments_pb2_grpc.AssessmentServiceStub(self.channel)
        self.fit = fit_pb2_grpc.RoleFitServiceStub(self.channel)
        self._skills: list[catalogue_pb2.Skill] = []
        self._skills_at = -CATALOGUE_SECONDS

    async def active_skills(self, principal: Principal) -> list[catalogue_pb2.Skill]:
        if time.monotonic() - self._skills_at >= CATALOGUE_SECONDS:
            request = catalogue_pb2.ListSkillsRequest(status=catalogue_pb2.Skill.STATUS_ACTIVE)
            self._skills = await self.every_page(self.catalogue.ListSkills, request, "skills", principal)
            self._skills_at = time.monotonic()
        return self._skills

    async def skill_names(self, principal: Principal) -> dict[str, str]:
        """`skills/{id}` -> preferred name."""
        return {s.name: s.preferred_name for s in await self.active_skills(principal)}

    async def levels(self, person: str, principal: Principal) -> list[assessments_pb2.SkillLevel]:
        request = assessments_pb2.ListSkillLevelsRequest(parent=person)
        return await self.every_page(self.assessments.ListSkillLevels, request, "skill_levels", principal)

    async def matrix(self, unit: str, principal: Principal) -> fit_pb2.TeamSkillMatrix:
        return await self.call(
            self.fit.GetTeamSkillMatrix,
            fit_pb2.GetTeamSkillMatrixRequest(org_unit=unit, include_descendants=True),
            principal,
        )
