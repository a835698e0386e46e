"""The permission every RPC of the skills service needs.

The interceptor refuses a method missing here, so a new RPC cannot be
reachable by accident; a test checks every method of every service is listed.
Finer rules (a person records claims about themselves, a manager acts on the
org units they head, only HR sees the whole company) live in the use cases.
"""

from services.platform.auth import ASSESSMENTS_IMPORT, ASSESSMENTS_WRITE, CATALOGUE_WRITE, READ

_PERMISSIONS = {
    "CatalogueService": {
        "CreateProficiencyScale": CATALOGUE_WRITE,
        "GetProficiencyScale": READ,
        "ListProficiencyScales": READ,
        "UpdateProficiencyScale": CATALOGUE_WRITE,
        "CreateSkillCategory": CATALOGUE_WRITE,
        "GetSkillCategory": READ,
        "ListSkillCategories": READ,
        "UpdateSkillCategory": CATALOGUE_WRITE,
        "DeleteSkillCategory": CATALOGUE_WRITE,
        "CreateSkill": CATALOGUE_WRITE,
        "GetSkill": READ,
        "ListSkills": READ,
        "UpdateSkill": CATALOGUE_WRITE,
        "DeprecateSkill": CATALOGUE_WRITE,
        "SearchSkills": READ,
    },
    "AssessmentService": {
        # Who may assess whom is checked by the use case.
        "CreateAssessment": ASSESSMENTS_WRITE,
        "GetAssessment": READ,
        "ListAssessments": READ,
        "ConfirmAssessment": ASSESSMENTS_WRITE,
        "ImportAssessments": ASSESSMENTS_IMPORT,
        "GetSkillLevel": READ,
        "ListSkillLevels": READ,
        "ListExpiringCertifications": READ,
    },
    "RoleFitService": {
        "GetRoleFit": READ,
        "FindCandidates": READ,
        "GetTeamSkillMatrix": READ,
        "GetGapReport": READ,
        "GetTeamSkillTrend": READ,
    },
}

PERMISSIONS: dict[str, str] = {
    f"/engage.skills.v1.{service}/{method}": permission
    for service, methods in _PERMISSIONS.items()
    for method, permission in methods.items()
}
