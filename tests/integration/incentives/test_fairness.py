"""Fairness and privacy: peer recognition rules, reciprocal pairs, team
summaries withheld below the minimum group size, and credit that stays with
the team a person was in when the behaviour happened."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
from engage.incentives.v1 import behaviours_pb2, scorecards_pb2
from engage.roles.v1 import directory_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.incentives.conftest import (
    collaboration_scheme,
    create_and_publish,
    event,
    start_incentives,
    ts,
)
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

Outcome = behaviours_pb2.RecordOutcome
Event = behaviours_pb2.BehaviourEvent


def thanks(event_id: str, giver: str, recipient: str, at: Timestamp) -> behaviours_pb2.ObservedEvent:
    return event(event_id, "peer-recognition-given", [giver], at, recipient=f"people/{recipient}")


async def _limit_recognitions(inc, budget: int) -> None:
    kind = await inc.behaviours.GetBehaviourType(
        behaviours_pb2.GetBehaviourTypeRequest(name="behaviourTypes/peer-recognition-given"), metadata=inc.admin
    )
    assert kind.peer_recognition and kind.recognition_budget == 10  # as seeded
    kind.recognition_budget = budget
    await inc.behaviours.UpdateBehaviourType(
        behaviours_pb2.UpdateBehaviourTypeRequest(
            behaviour_type=kind, update_mask=FieldMask(paths=["recognition_budget"])
        ),
        metadata=inc.admin,
    )


async def test_peer_recognition_has_a_monthly_budget_per_giver_and_no_self_recognition(world):
    inc = world.inc
    await _limit_recognitions(inc, 2)
    result = await inc.record(
        thanks("t1", "A1", "S1", ts(2025, 1, 3)),
        thanks("t2", "A1", "S2", ts(2025, 1, 4)),
        thanks("t3", "A1", "S1", ts(2025, 1, 5)),  # a third in January: over A1's budget
        thanks("t4", "A2", "A2", ts(2025, 1, 5)),  # to oneself
        thanks("t5", "A1", "S1", ts(2025, 2, 1)),  # February has a budget of its own
        event("t6", "peer-recognition-given", ["A2"], ts(2025, 1, 6)),  # whom?
    )
    assert [o.kind for o in result.outcomes] == [
        Outcome.KIND_ACCEPTED,
        Outcome.KIND_ACCEPTED,
        Outcome.KIND_PARKED,
        Outcome.KIND_PARKED,
        Outcome.KIND_ACCEPTED,
        Outcome.KIND_REJECTED,
    ]
    assert result.outcomes[2].park_reason == Event.PARK_REASON_RECOGNITION_BUDGET_EXCEEDED
    assert "people/A1" in result.outcomes[2].reason and "2025-01" in result.outcomes[2].reason
    assert result.outcomes[3].park_reason == Event.PARK_REASON_SELF_RECOGNITION
    assert result.outcomes[5].field == "events[5].observation.recipient"
    parked = await inc.behaviours.ListBehaviourEvents(
        behaviours_pb2.ListBehaviourEventsRequest(state=Event.STATE_PARKED), metadata=inc.admin
    )
    assert {(e.name, e.park_reason, e.observation.recipient) for e in parked.behaviour_events} == {
        ("behaviourEvents/t3", Event.PARK_REASON_RECOGNITION_BUDGET_EXCEEDED, "people/S1"),
        ("behaviourEvents/t4", Event.PARK_REASON_SELF_RECOGNITION, "people/A2"),
    }
    # Replaying does not get round the rules.
    replay = await inc.behaviours.ReplayParkedEvents(behaviours_pb2.ReplayParkedEventsRequest(), metadata=inc.crm)
    assert not replay.accepted and len(replay.still_parked) == 2
    # The giver is the one credited, with the unit they were in.
    got = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/t1"), metadata=inc.admin
    )
    assert [(u.person, u.org_unit, u.line_of_business) for u in got.credited_units] == [
        ("people/A1", "orgUnits/SALES-N", "orgUnits/SALES")
    ]


async def test_pairs_who_mostly_recognise_each_other_are_flagged_for_review(world):
    inc = world.inc
    await inc.record(
        *(thanks(f"ab{i}", "A1", "A2", ts(2025, 3, 1 + i)) for i in range(3)),
        *(thanks(f"ba{i}", "A2", "A1", ts(2025, 3, 1 + i)) for i in range(4)),
        thanks("a-s", "A1", "S1", ts(2025, 3, 9)),
        *(thanks(f"s{i}", "S1", "S2", ts(2025, 3, 1 + i)) for i in range(3)),  # one way only
        thanks("s-back", "S2", "S1", ts(2025, 3, 9)),
        *(thanks(f"apr{i}", "S2", "S1", ts(2025, 4, 1 + i)) for i in range(3)),  # another month
    )
    flagged = await inc.behaviours.ListReciprocalPairs(
        behaviours_pb2.ListReciprocalPairsRequest(month="2025-03"), metadata=inc.admin
    )
    assert [(p.person_a, p.person_b, p.a_to_b, p.b_to_a, p.a_given, p.b_given) for p in flagged.pairs] == [
        ("people/A1", "people/A2", 3, 4, 4, 4)
    ]
    bad = await call_error(
        inc.behaviours.ListReciprocalPairs(
            behaviours_pb2.ListReciprocalPairsRequest(month="March"), metadata=inc.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad.fields == ["month"]
    # Who thanks whom is for reviewers, not for colleagues.
    await call_error(
        inc.behaviours.ListReciprocalPairs(
            behaviours_pb2.ListReciprocalPairsRequest(month="2025-03"), metadata=inc.as_person("A1")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def _team(inc, unit: str, metadata=None, period: str = "2025-01") -> scorecards_pb2.TeamSummary:
    return await inc.scorecards.GetTeamSummary(
        scorecards_pb2.GetTeamSummaryRequest(name=f"schemes/collab/periods/{period}/teams/{unit}"),
        metadata=metadata or inc.admin,
        timeout=10,
    )


async def test_team_summaries_are_withheld_below_the_minimum_group_size(world):
    inc = world.inc
    await create_and_publish(inc, collaboration_scheme())
    await inc.record(
        event("c1", "case-solved-cross-department", ["S1"], ts(2025, 1, 6)),
        event("c2", "case-solved-cross-department", ["S1", "A1"], ts(2025, 1, 7)),
    )
    team = await _team(inc, "SVC-1", inc.as_person("TL-S"))  # TL-S, S1, S2: three people
    assert team.suppressed and team.member_count == 3 and team.minimum_group_size == 5
    assert not team.measures and team.average_attainment == 0
    company = await _team(inc, "ACME", inc.as_person("CEO"))  # all nine
    assert not company.suppressed and company.member_count == 9
    cases = company.measures[0]
    assert cases.measure == "cross-cases" and abs(cases.average_value * 9 - 2) < 1e-9  # 1.5 (S1) + 0.5 (A1)
    assert abs(cases.average_attainment * 9 - 1.0) < 1e-9  # 0.75 + 0.25
    # The minimum is a setting: a replica configured with 3 shows the same team.
    relaxed = await start_incentives(inc.app.db.url, inc.nats, inc.mint, minimum_group_size=3)
    try:
        shown = await _team(relaxed, "SVC-1", relaxed.as_person("TL-S"))
        assert not shown.suppressed and shown.minimum_group_size == 3 and shown.member_count == 3
        assert abs(shown.measures[0].average_value * 3 - 1.5) < 1e-9  # S1's cases
    finally:
        await relaxed.channel.close(None)
        await relaxed.app.stop()
    other = await call_error(_team(inc, "SALES-N", inc.as_person("TL-S")), grpc.StatusCode.PERMISSION_DENIED)
    assert other.reason == "OUTSIDE_MANAGED_SCOPE"
    await call_error(_team(inc, "NOWHERE"), grpc.StatusCode.NOT_FOUND)


def _now() -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.now(UTC))
    return t


async def test_a_person_who_moves_teams_keeps_earlier_events_under_the_old_team(world):
    inc, roles = world.inc, world.roles
    await create_and_publish(inc, collaboration_scheme())
    # Service Team 1 grows to six, so its numbers may be shown.
    for i in range(3):
        await roles.directory.CreatePerson(
            directory_pb2.CreatePersonRequest(
                person_id=f"N{i}",
                person=directory_pb2.Person(
                    display_name=f"New {i}", org_unit="orgUnits/SVC-1", manager="people/TL-S", management_level=2
                ),
            ),
            metadata=roles.admin,
        )
    await inc.wait_projected(12)
    await inc.record(
        event("before-1", "case-solved-cross-department", ["A2"], _now()),
        event("before-2", "case-solved-cross-department", ["A2"], _now()),
    )
    person = await roles.directory.GetPerson(directory_pb2.GetPersonRequest(name="people/A2"), metadata=roles.admin)
    person.org_unit, person.manager = "orgUnits/SVC-1", "people/TL-S"
    await roles.directory.UpdatePerson(
        directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["org_unit", "manager"])),
        metadata=roles.admin,
    )

    async def moved() -> bool:
        got = await _team(inc, "SVC-1", period=_period_now())
        return got.member_count == 7

    await eventually(moved, lambda m: m, what="A2 projected into SVC-1")
    await inc.record(event("after", "case-solved-cross-department", ["A2"], _now()))

    units = {}
    for name in ("before-1", "after"):
        got = await inc.behaviours.GetBehaviourEvent(
            behaviours_pb2.GetBehaviourEventRequest(name=f"behaviourEvents/{name}"), metadata=inc.admin
        )
        units[name] = [(u.org_unit, u.line_of_business) for u in got.credited_units]
    assert units == {
        "before-1": [("orgUnits/SALES-N", "orgUnits/SALES")],
        "after": [("orgUnits/SVC-1", "orgUnits/SERVICE")],
    }
    team = await _team(inc, "SVC-1", period=_period_now())
    assert not team.suppressed and team.member_count == 7  # TL-S, S1, S2, N0-N2 and A2
    assert abs(team.measures[0].average_value * 7 - 1) < 1e-9  # only the case A2 solved in the team
    company = await _team(inc, "ACME", period=_period_now())
    assert abs(company.measures[0].average_value * company.member_count - 3) < 1e-9
    # A2's own scorecard has all three.
    card = await inc.scorecards.GetScorecard(
        scorecards_pb2.GetScorecardRequest(name=f"schemes/collab/periods/{_period_now()}/scorecards/A2"),
        metadata=inc.admin,
    )
    assert card.lines[0].value == 3


def _period_now() -> str:
    """The scheme's current period (its calendar is Amsterdam's)."""
    return datetime.now(ZoneInfo("Europe/Amsterdam")).strftime("%Y-%m")
