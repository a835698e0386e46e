"""Behaviour events from CRM systems: gRPC batches and CloudEvents on NATS,
counted once, parked when something is unknown, never dropped."""

import grpc
from engage.incentives.v1 import behaviours_pb2, events_pb2
from engage.roles.v1 import directory_pb2

from services.incentives.migrate import migrate
from tests.integration.incentives.conftest import event, observed, ts
from tests.support.events import published, types
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

Outcome = behaviours_pb2.RecordOutcome
Event = behaviours_pb2.BehaviourEvent


async def test_the_catalogue_is_seeded_once_with_crm_behaviours(incentives):
    await migrate(incentives.app.db)  # a second run adds nothing
    listed = await incentives.behaviours.ListBehaviourTypes(
        behaviours_pb2.ListBehaviourTypesRequest(), metadata=incentives.admin, timeout=5
    )
    ids = {t.name for t in listed.behaviour_types}
    assert {
        "behaviourTypes/case-solved-cross-department",
        "behaviourTypes/knowledge-article-published",
        "behaviourTypes/knowledge-article-reused",
        "behaviourTypes/referral-to-other-line-of-business",
        "behaviourTypes/peer-recognition-given",
        "behaviourTypes/customer-satisfaction-score",
    } <= ids
    sharing = await incentives.behaviours.ListBehaviourTypes(
        behaviours_pb2.ListBehaviourTypesRequest(category=behaviours_pb2.BEHAVIOUR_CATEGORY_KNOWLEDGE_SHARING),
        metadata=incentives.admin,
        timeout=5,
    )
    assert [t.name.split("/")[1] for t in sharing.behaviour_types] == [
        "knowledge-article-published",
        "knowledge-article-reused",
    ]
    await incentives.settle()
    created = types(await published(incentives.nats.url))["engage.incentives.v1.behaviour_type.created"]
    assert created == len(listed.behaviour_types)


async def test_a_batch_counts_each_event_once_and_reports_each_outcome(world):
    inc = world.inc
    case = event("case-1", "case-solved-cross-department", ["A1", "S1"], ts(2025, 1, 10, 9))
    first = await inc.record(
        case,
        case,  # the same id twice in one batch
        event("csat-1", "customer-satisfaction-score", ["A1"], ts(2025, 1, 11), value=4.5),
        behaviours_pb2.ObservedEvent(
            id="bad-1", observation=observed("case-solved-cross-department", [], ts(2025, 1, 1))
        ),
    )
    assert [o.kind for o in first.outcomes] == [
        Outcome.KIND_ACCEPTED,
        Outcome.KIND_DUPLICATE,
        Outcome.KIND_ACCEPTED,
        Outcome.KIND_REJECTED,
    ]
    assert first.outcomes[3].field == "events[3].observation.credits"
    again = await inc.record(case)
    assert again.duplicate_count == 1 and again.accepted_count == 0
    stored = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/case-1"), metadata=inc.admin, timeout=5
    )
    assert stored.state == Event.STATE_ACCEPTED
    assert [c.person for c in stored.observation.credits] == ["people/A1", "people/S1"]
    err = await call_error(
        inc.behaviours.GetBehaviourEvent(
            behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/bad-1"), metadata=inc.admin, timeout=5
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert "bad-1" in err.message


async def test_an_internal_customer_event_credits_the_provider_line_of_business(world):
    inc = world.inc
    await inc.record(
        event(
            "ref-1",
            "referral-to-other-line-of-business",
            ["S1"],
            ts(2025, 1, 12),
            customer_line_of_business="orgUnits/SALES",
            provider_line_of_business="orgUnits/SERVICE",
        )
    )
    got = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/ref-1"), metadata=inc.admin, timeout=5
    )
    assert list(got.credited_org_units) == ["orgUnits/SERVICE"]


async def test_cloudevents_on_nats_count_once_and_poison_is_dead_lettered_without_stalling(world):
    inc = world.inc
    observation = observed("case-solved-cross-department", ["A1", "S2"], ts(2025, 1, 14))
    observation.source_system = ""
    body = observation.SerializeToString()
    await inc.publish_crm("ce-1", body)
    await inc.publish_crm("ce-1", body, msg_id="redelivered-under-another-message-id")
    await inc.publish_crm("ce-poison", b"\x00not protobuf")
    thanks = observed("peer-recognition-given", ["S2"], ts(2025, 1, 15), recipient="people/S1")
    await inc.publish_crm("ce-2", thanks.SerializeToString())

    async def states() -> dict[str, int]:
        listed = await inc.behaviours.ListBehaviourEvents(
            behaviours_pb2.ListBehaviourEventsRequest(), metadata=inc.admin, timeout=5
        )
        return {e.name: e.state for e in listed.behaviour_events}

    seen = await eventually(states, lambda s: len(s) == 2, what="both good events recorded")
    assert seen == {"behaviourEvents/ce-1": Event.STATE_ACCEPTED, "behaviourEvents/ce-2": Event.STATE_ACCEPTED}
    ce1 = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/ce-1"), metadata=inc.admin, timeout=5
    )
    assert ce1.observation.source_system == "/crm/service-cloud"  # from ce-source when the body has none
    dead = await eventually(inc.dead_letters, lambda d: len(d) == 1, timeout=20, what="the poison dead-lettered")
    assert dead[0].event_id == "ce-poison" and dead[0].subject == "crm.behaviours.v1.case"
    assert "BehaviourObserved" in dead[0].error and dead[0].deliveries == 2


async def test_unknown_people_and_behaviours_are_parked_visible_and_count_once_known(world):
    inc, roles = world.inc, world.roles
    result = await inc.record(
        event("new-1", "case-solved-cross-department", ["A1", "N1"], ts(2025, 1, 20)),
        event("odd-1", "webinar-hosted", ["A1"], ts(2025, 1, 21)),
    )
    assert [o.kind for o in result.outcomes] == [Outcome.KIND_PARKED, Outcome.KIND_PARKED]
    assert result.outcomes[0].park_reason == Event.PARK_REASON_UNKNOWN_PERSON
    parked = await inc.behaviours.ListBehaviourEvents(
        behaviours_pb2.ListBehaviourEventsRequest(state=Event.STATE_PARKED), metadata=inc.admin, timeout=5
    )
    reasons = {e.name: (e.park_reason, e.park_detail) for e in parked.behaviour_events}
    assert reasons == {
        "behaviourEvents/new-1": (Event.PARK_REASON_UNKNOWN_PERSON, "people/N1"),
        "behaviourEvents/odd-1": (Event.PARK_REASON_UNKNOWN_BEHAVIOUR_TYPE, "behaviourTypes/webinar-hosted"),
    }
    # Replaying before anything changed keeps them parked, with their reasons.
    replay = await inc.behaviours.ReplayParkedEvents(
        behaviours_pb2.ReplayParkedEventsRequest(), metadata=inc.crm, timeout=5
    )
    assert not replay.accepted and len(replay.still_parked) == 2

    # HR creates the person: the roles event reaches incentives and the parked event counts.
    await roles.directory.CreatePerson(
        directory_pb2.CreatePersonRequest(
            person_id="N1",
            person=directory_pb2.Person(
                display_name="New joiner", org_unit="orgUnits/SVC-1", manager="people/TL-S", management_level=2
            ),
        ),
        metadata=roles.admin,
        timeout=5,
    )

    async def state_of(name: str) -> int:
        got = await inc.behaviours.GetBehaviourEvent(
            behaviours_pb2.GetBehaviourEventRequest(name=name), metadata=inc.admin, timeout=5
        )
        return got.state

    await eventually(lambda: state_of("behaviourEvents/new-1"), lambda s: s == Event.STATE_ACCEPTED, what="accepted")

    # A programme lead adds the behaviour type, then replays what waited for it.
    await inc.behaviours.CreateBehaviourType(
        behaviours_pb2.CreateBehaviourTypeRequest(
            behaviour_type_id="webinar-hosted",
            behaviour_type=behaviours_pb2.BehaviourType(
                display_name="Customer webinar hosted",
                category=behaviours_pb2.BEHAVIOUR_CATEGORY_KNOWLEDGE_SHARING,
                unit="webinar",
            ),
        ),
        metadata=inc.admin,
        timeout=5,
    )
    replay = await inc.behaviours.ReplayParkedEvents(
        behaviours_pb2.ReplayParkedEventsRequest(names=["behaviourEvents/odd-1"]), metadata=inc.crm, timeout=5
    )
    assert list(replay.accepted) == ["behaviourEvents/odd-1"] and not replay.still_parked
    again = await inc.behaviours.ReplayParkedEvents(
        behaviours_pb2.ReplayParkedEventsRequest(), metadata=inc.crm, timeout=5
    )
    assert not again.accepted and not again.still_parked
    await inc.settle()
    bodies = [
        events_pb2.BehaviourTypeEvent.FromString(e.data)
        for e in await published(inc.nats.url)
        if e.type == "engage.incentives.v1.behaviour_type.created"
    ]
    assert "behaviourTypes/webinar-hosted" in {b.behaviour_type.name for b in bodies}


async def test_only_crm_systems_and_hr_may_record_events(world):
    inc = world.inc
    err = await call_error(
        inc.behaviours.RecordBehaviourEvents(
            behaviours_pb2.RecordBehaviourEventsRequest(
                events=[event("x-1", "case-solved-cross-department", ["A1"], ts(2025, 1, 2))]
            ),
            metadata=inc.as_person("A1"),
            timeout=5,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "behaviours.record" in err.message
