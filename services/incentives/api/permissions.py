"""The permission every RPC of the incentives service needs.

The interceptor refuses a method missing here, so a new RPC cannot be
reachable by accident; a test checks every method of every service is listed.
"""

from services.platform.auth import AWARDS_DECIDE, BEHAVIOURS_RECORD, CATALOGUE_WRITE, PERIODS_CLOSE, READ

_PERMISSIONS = {
    "BehaviourService": {
        "CreateBehaviourType": CATALOGUE_WRITE,
        "GetBehaviourType": READ,
        "ListBehaviourTypes": READ,
        "UpdateBehaviourType": CATALOGUE_WRITE,
        "RecordBehaviourEvents": BEHAVIOURS_RECORD,
        "GetBehaviourEvent": READ,
        "ListBehaviourEvents": READ,
        "ReplayParkedEvents": BEHAVIOURS_RECORD,
        # Who recognises whom is for the reviewers' eyes.
        "ListReciprocalPairs": PERIODS_CLOSE,
    },
    # Dead letters are mended by those who send and fix behaviour events (like parked ones).
    "DeadLetterService": {
        "ListDeadLetters": BEHAVIOURS_RECORD,
        "GetDeadLetter": BEHAVIOURS_RECORD,
        "ReplayDeadLetter": BEHAVIOURS_RECORD,
        "DiscardDeadLetter": BEHAVIOURS_RECORD,
    },
    "SchemeService": {
        "CreateScheme": CATALOGUE_WRITE,
        "GetScheme": READ,
        "ListSchemes": READ,
        "UpdateScheme": CATALOGUE_WRITE,
        "PublishScheme": CATALOGUE_WRITE,
        "SimulateScheme": CATALOGUE_WRITE,
    },
    "ScorecardService": {
        # Employees read their own, managers their units': the use case checks whose.
        "GetScorecard": READ,
        "ListScorecards": READ,
        # Heads of the unit (or above), HR and programme leads: the use case checks.
        "GetTeamSummary": READ,
    },
    "AwardService": {
        "GetPeriod": READ,
        "ClosePeriod": PERIODS_CLOSE,
        "GetAward": READ,
        "ListAwards": READ,
        "AdjustAward": AWARDS_DECIDE,
        "ApproveAward": AWARDS_DECIDE,
    },
}

PERMISSIONS: dict[str, str] = {
    f"/engage.incentives.v1.{service}/{method}": permission
    for service, methods in _PERMISSIONS.items()
    for method, permission in methods.items()
}
