"""BehaviourService: the behaviour catalogue, event ingestion and parked events."""

from __future__ import annotations

import grpc
from engage.incentives.v1 import behaviours_pb2, behaviours_pb2_grpc

from services.incentives import messages
from services.incentives.app import catalogue as uc
from services.incentives.app import ingestion, reciprocity
from services.incentives.domain.model import EventState
from services.platform.db import Database
from services.platform.errors import InvalidArgument, invalid
from services.platform.resources import check_id, mask_paths, page_of, parse_name

_TYPE_MASK = {
    "display_name",
    "description",
    "category",
    "unit",
    "evidence_source",
    "credits_provider",
    "peer_recognition",
    "recognition_budget",
}
MAX_BATCH = 10_000
Outcome = behaviours_pb2.RecordOutcome


def required_text(value: str, field: str, limit: int = 200) -> str:
    if not value.strip():
        raise invalid(field, "is required")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value


def _type_fields(t: behaviours_pb2.BehaviourType, prefix: str = "behaviour_type") -> uc.BehaviourTypeFields:
    category = messages.category_in(t.category, f"{prefix}.category")
    assert category is not None
    return uc.BehaviourTypeFields(
        display_name=required_text(t.display_name, f"{prefix}.display_name"),
        description=t.description[:2000],
        category=category,
        unit=required_text(t.unit, f"{prefix}.unit", 40),
        evidence_source=t.evidence_source[:200],
        credits_provider=t.credits_provider,
        peer_recognition=t.peer_recognition,
        recognition_budget=_budget(t.recognition_budget, f"{prefix}.recognition_budget"),
    )


def _budget(value: int, field: str) -> int:
    if value < 0:
        raise invalid(field, "must not be negative (0: no limit)")
    return value


class BehaviourServicer(behaviours_pb2_grpc.BehaviourServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateBehaviourType(
        self, request: behaviours_pb2.CreateBehaviourTypeRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.BehaviourType:
        type_id = check_id(request.behaviour_type_id, "behaviour_type_id")
        fields = _type_fields(request.behaviour_type)
        row = await uc.create_behaviour_type(self.db, type_id, fields, request.request_id, request)
        return messages.behaviour_type_out(row)

    async def GetBehaviourType(
        self, request: behaviours_pb2.GetBehaviourTypeRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.BehaviourType:
        row = await uc.get_behaviour_type(self.db, parse_name(request.name, "behaviourTypes", "name"))
        return messages.behaviour_type_out(row)

    async def ListBehaviourTypes(
        self, request: behaviours_pb2.ListBehaviourTypesRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.ListBehaviourTypesResponse:
        category = messages.category_in(request.category, "category", required=False)
        page = page_of(request.page_size, request.page_token, category=category)
        rows = await uc.list_behaviour_types(self.db, category, page)
        return behaviours_pb2.ListBehaviourTypesResponse(
            behaviour_types=[messages.behaviour_type_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateBehaviourType(
        self, request: behaviours_pb2.UpdateBehaviourTypeRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.BehaviourType:
        t = request.behaviour_type
        type_id = parse_name(t.name, "behaviourTypes", "behaviour_type.name")
        paths = mask_paths(request.update_mask, _TYPE_MASK)
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = required_text(t.display_name, "behaviour_type.display_name")
        if "description" in paths:
            changes["description"] = t.description[:2000]
        if "category" in paths:
            changes["category"] = messages.category_in(t.category, "behaviour_type.category")
        if "unit" in paths:
            changes["unit"] = required_text(t.unit, "behaviour_type.unit", 40)
        if "evidence_source" in paths:
            changes["evidence_source"] = t.evidence_source[:200]
        if "credits_provider" in paths:
            changes["credits_provider"] = t.credits_provider
        if "peer_recognition" in paths:
            changes["peer_recognition"] = t.peer_recognition
        if "recognition_budget" in paths:
            changes["recognition_budget"] = _budget(t.recognition_budget, "behaviour_type.recognition_budget")
        row = await uc.update_behaviour_type(self.db, type_id, changes, t.etag)
        return messages.behaviour_type_out(row)

    async def RecordBehaviourEvents(
        self, request: behaviours_pb2.RecordBehaviourEventsRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.RecordBehaviourEventsResponse:
        if not request.events:
            raise invalid("events", "at least one event is required")
        if len(request.events) > MAX_BATCH:
            raise invalid("events", f"at most {MAX_BATCH} events per call")
        outcomes: list[Outcome | None] = []
        valid: list[messages.Observed] = []
        for i, e in enumerate(request.events):
            try:
                valid.append(messages.observed_in(e.id, e.observation, f"events[{i}].observation", f"events[{i}].id"))
                outcomes.append(None)
            except InvalidArgument as exc:
                field = exc.violations[0].field if exc.violations else ""
                outcomes.append(Outcome(id=e.id, kind=Outcome.KIND_REJECTED, field=field, reason=exc.message))
        recorded = iter(await ingestion.record_batch(self.db, valid))
        kinds = {
            ingestion.ACCEPTED: Outcome.KIND_ACCEPTED,
            ingestion.PARKED: Outcome.KIND_PARKED,
            ingestion.REJECTED: Outcome.KIND_REJECTED,
        }
        final: list[Outcome] = []
        for index, slot in enumerate(outcomes):
            if slot is not None:
                final.append(slot)
                continue
            r = next(recorded)
            final.append(
                Outcome(
                    id=r.id,
                    kind=kinds.get(r.kind, Outcome.KIND_DUPLICATE),
                    park_reason=messages.outcome_park_reason(r.park_reason),  # type: ignore[arg-type]
                    field=f"events[{index}].observation.{r.field}" if r.field else "",
                    reason=r.reason,
                )
            )
        count = {k: sum(1 for o in final if o.kind == k) for k in Outcome.Kind.values()}
        return behaviours_pb2.RecordBehaviourEventsResponse(
            outcomes=final,
            accepted_count=count[Outcome.KIND_ACCEPTED],
            parked_count=count[Outcome.KIND_PARKED],
            duplicate_count=count[Outcome.KIND_DUPLICATE],
            rejected_count=count[Outcome.KIND_REJECTED],
        )

    async def GetBehaviourEvent(
        self, request: behaviours_pb2.GetBehaviourEventRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.BehaviourEvent:
        row, units = await ingestion.get_event(self.db, parse_name(request.name, "behaviourEvents", "name"))
        return messages.behaviour_event_out(row, units)

    async def ListBehaviourEvents(
        self, request: behaviours_pb2.ListBehaviourEventsRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.ListBehaviourEventsResponse:
        state = (
            messages.enum_in(EventState, behaviours_pb2.BehaviourEvent.State, request.state, "STATE_", "state")
            if request.state
            else None
        )
        person = parse_name(request.person, "people", "person", required=False) or None
        page = page_of(request.page_size, request.page_token, state=state, person=person)
        rows = await ingestion.list_events(self.db, state, person, page.size, page.after)
        return behaviours_pb2.ListBehaviourEventsResponse(
            behaviour_events=[messages.behaviour_event_out(r, units) for r, units in rows],
            next_page_token=page.next_token(rows[-1][0].id if rows else None, len(rows)),
        )

    async def ReplayParkedEvents(
        self, request: behaviours_pb2.ReplayParkedEventsRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.ReplayParkedEventsResponse:
        ids = [parse_name(n, "behaviourEvents", f"names[{i}]") for i, n in enumerate(request.names)]
        accepted, parked = await ingestion.replay_parked(self.db, ids)
        return behaviours_pb2.ReplayParkedEventsResponse(
            accepted=[f"behaviourEvents/{i}" for i in accepted],
            still_parked=[messages.behaviour_event_out(r) for r in parked],
        )

    async def ListReciprocalPairs(
        self, request: behaviours_pb2.ListReciprocalPairsRequest, context: grpc.aio.ServicerContext
    ) -> behaviours_pb2.ListReciprocalPairsResponse:
        pairs = await reciprocity.reciprocal_pairs_in(self.db, request.month)
        return behaviours_pb2.ListReciprocalPairsResponse(
            pairs=[
                behaviours_pb2.ReciprocalPair(
                    person_a=f"people/{p.person_a}",
                    person_b=f"people/{p.person_b}",
                    a_to_b=p.a_to_b,
                    b_to_a=p.b_to_a,
                    a_given=p.a_given,
                    b_given=p.b_given,
                )
                for p in pairs
            ]
        )
