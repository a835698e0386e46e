"""The permission every RPC of the roles service needs.

The interceptor refuses a method missing here, so a new RPC cannot be
reachable by accident; a test checks every method of every service is listed.
"""

from services.platform.auth import ASSIGNMENTS_WRITE, CATALOGUE_WRITE, DIRECTORY_WRITE, READ, SELF_SERVICE

_PERMISSIONS = {
    "DirectoryService": {
        "CreateOrgUnit": DIRECTORY_WRITE,
        "GetOrgUnit": READ,
        "ListOrgUnits": READ,
        "UpdateOrgUnit": DIRECTORY_WRITE,
        "DeleteOrgUnit": DIRECTORY_WRITE,
        "CreatePerson": DIRECTORY_WRITE,
        "GetPerson": READ,
        "ListPeople": READ,
        "UpdatePerson": DIRECTORY_WRITE,
        "ImportDirectory": DIRECTORY_WRITE,
    },
    "RoleService": {
        "CreateDecisionCategory": CATALOGUE_WRITE,
        "GetDecisionCategory": READ,
        "ListDecisionCategories": READ,
        "UpdateDecisionCategory": CATALOGUE_WRITE,
        "DeleteDecisionCategory": CATALOGUE_WRITE,
        "CreateRole": CATALOGUE_WRITE,
        "GetRole": READ,
        "ListRoles": READ,
        "UpdateRole": CATALOGUE_WRITE,
        "DeleteRole": CATALOGUE_WRITE,
        "ActivateRole": CATALOGUE_WRITE,
        "RetireRole": CATALOGUE_WRITE,
    },
    "AssignmentService": {
        # Managers may assign within their units: the use case checks where.
        "CreateAssignment": ASSIGNMENTS_WRITE,
        "GetAssignment": READ,
        "ListAssignments": READ,
        "UpdateAssignment": ASSIGNMENTS_WRITE,
        "EndAssignment": ASSIGNMENTS_WRITE,
        "AcknowledgeAssignment": SELF_SERVICE,
        "CreateDelegation": SELF_SERVICE,
        "GetDelegation": READ,
        "ListDelegations": READ,
        "RevokeDelegation": SELF_SERVICE,
    },
    "DecisionService": {
        "CheckDecision": READ,
    },
}

PERMISSIONS: dict[str, str] = {
    f"/engage.roles.v1.{service}/{method}": permission
    for service, methods in _PERMISSIONS.items()
    for method, permission in methods.items()
}
