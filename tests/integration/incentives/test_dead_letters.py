"""Dead letters through the API: a malformed message is given up after its
bounded deliveries without stalling the consumer, listed, replayed once its
cause is mended, or discarded with a reason."""

import grpc
from engage.incentives.v1 import behaviours_pb2, dead_letters_pb2, dead_letters_pb2_grpc, events_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.incentives.conftest import observed, ts
from tests.support.events import wait_for_events
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

Letter = dead_letters_pb2.DeadLetter


async def test_dead_letters_are_listed_replayed_once_mended_or_discarded_with_a_reason(world):
    inc = world.inc
    letters = dead_letters_pb2_grpc.DeadLetterServiceStub(inc.channel)
    # A connector's new "kudos" type, wrongly flagged as peer recognition: its events name no recipient.
    await inc.behaviours.CreateBehaviourType(
        behaviours_pb2.CreateBehaviourTypeRequest(
            behaviour_type_id="kudos",
            behaviour_type=behaviours_pb2.BehaviourType(
                display_name="Kudos from a customer",
                category=behaviours_pb2.BEHAVIOUR_CATEGORY_CUSTOMER_OUTCOME,
                unit="kudos",
                peer_recognition=True,
            ),
        ),
        metadata=inc.admin,
    )
    await inc.publish_crm("poison", b"\x00not protobuf")
    await inc.publish_crm("kudos-1", observed("kudos", ["S1"], ts(2025, 1, 8)).SerializeToString(), "kudos")
    await inc.publish_crm("fine", observed("case-solved-cross-department", ["S2"], ts(2025, 1, 9)).SerializeToString())

    async def listed(**filters: object) -> list[Letter]:
        got = await letters.ListDeadLetters(dead_letters_pb2.ListDeadLettersRequest(**filters), metadata=inc.crm)
        return list(got.dead_letters)

    pending = await eventually(listed, lambda d: len(d) == 2, timeout=20, what="two dead letters")
    by_id = {x.event_id: x for x in pending}
    assert by_id["poison"].state == Letter.STATE_PENDING and by_id["poison"].deliveries == 2  # max_deliver
    assert by_id["poison"].data == b"\x00not protobuf" and by_id["poison"].subject == "crm.behaviours.v1.case"
    assert by_id["kudos-1"].deliveries == 1 and "recipient" in by_id["kudos-1"].error  # never retried
    # The consumer went on: the good event behind them counts.
    fine = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/fine"), metadata=inc.admin
    )
    assert fine.state == behaviours_pb2.BehaviourEvent.STATE_ACCEPTED

    # Replaying before the cause is mended changes nothing.
    kudos = by_id["kudos-1"]
    err = await call_error(
        letters.ReplayDeadLetter(dead_letters_pb2.ReplayDeadLetterRequest(name=kudos.name), metadata=inc.crm),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "STILL_UNPROCESSABLE" and "recipient" in err.message
    # The programme lead mends the type; the letter now applies, once.
    kind = await inc.behaviours.GetBehaviourType(
        behaviours_pb2.GetBehaviourTypeRequest(name="behaviourTypes/kudos"), metadata=inc.admin
    )
    kind.peer_recognition = False
    await inc.behaviours.UpdateBehaviourType(
        behaviours_pb2.UpdateBehaviourTypeRequest(
            behaviour_type=kind, update_mask=FieldMask(paths=["peer_recognition"])
        ),
        metadata=inc.admin,
    )
    stale = await call_error(
        letters.ReplayDeadLetter(
            dead_letters_pb2.ReplayDeadLetterRequest(name=kudos.name, etag="stale"), metadata=inc.crm
        ),
        grpc.StatusCode.ABORTED,
    )
    assert stale.reason == "ETAG_MISMATCH"
    replayed = await letters.ReplayDeadLetter(
        dead_letters_pb2.ReplayDeadLetterRequest(name=kudos.name, etag=kudos.etag), metadata=inc.crm
    )
    assert replayed.state == Letter.STATE_REPLAYED and replayed.decided_by == "crm-connector"
    counted = await inc.behaviours.GetBehaviourEvent(
        behaviours_pb2.GetBehaviourEventRequest(name="behaviourEvents/kudos-1"), metadata=inc.admin
    )
    assert counted.state == behaviours_pb2.BehaviourEvent.STATE_ACCEPTED
    again = await call_error(
        letters.ReplayDeadLetter(dead_letters_pb2.ReplayDeadLetterRequest(name=kudos.name), metadata=inc.crm),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert again.reason == "DEAD_LETTER_DECIDED"

    # The poison can never apply: it is discarded, with a reason.
    poison = by_id["poison"]
    no_reason = await call_error(
        letters.DiscardDeadLetter(dead_letters_pb2.DiscardDeadLetterRequest(name=poison.name), metadata=inc.crm),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert no_reason.fields == ["reason"]
    discarded = await letters.DiscardDeadLetter(
        dead_letters_pb2.DiscardDeadLetterRequest(name=poison.name, reason="garbage from the CRM sandbox"),
        metadata=inc.crm,
    )
    assert discarded.state == Letter.STATE_DISCARDED and discarded.decision_reason == "garbage from the CRM sandbox"
    assert [x.name for x in await listed(state=Letter.STATE_PENDING)] == []
    assert [x.name for x in await listed(state=Letter.STATE_DISCARDED)] == [poison.name]
    assert {x.name for x in await listed(consumer="incentives-crm-behaviours")} == {poison.name, kudos.name}
    got = await letters.GetDeadLetter(dead_letters_pb2.GetDeadLetterRequest(name=poison.name), metadata=inc.crm)
    assert got == discarded
    await call_error(
        letters.GetDeadLetter(dead_letters_pb2.GetDeadLetterRequest(name="deadLetters/999"), metadata=inc.crm),
        grpc.StatusCode.NOT_FOUND,
    )
    await call_error(
        letters.ListDeadLetters(dead_letters_pb2.ListDeadLettersRequest(), metadata=inc.as_person("S1")),
        grpc.StatusCode.PERMISSION_DENIED,
    )

    events = await wait_for_events(
        inc.nats.url,
        lambda ev: sum(e.type.startswith("engage.incentives.v1.dead_letter.") for e in ev) == 2,
        what="both decisions published",
    )
    decided = {
        e.type: events_pb2.DeadLetterEvent.FromString(e.data).dead_letter
        for e in events
        if e.type.startswith("engage.incentives.v1.dead_letter.")
    }
    assert decided["engage.incentives.v1.dead_letter.discarded"].name == poison.name
    assert decided["engage.incentives.v1.dead_letter.replayed"].data == b""  # never the body
