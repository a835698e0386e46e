"""Mapping between stored rows, domain values and protobuf messages."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engage.incentives.v1 import awards_pb2, behaviours_pb2, dead_letters_pb2, schemes_pb2, scorecards_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2

from services.incentives.domain.model import (
    Aggregation,
    BehaviourCategory,
    Calendar,
    CreditSplit,
    EventState,
    Measure,
    ParkReason,
    PayoutCurve,
    PeriodKind,
    SchemeContent,
    Tier,
)
from services.incentives.domain.periods import Period
from services.incentives.domain.scoring import Score
from services.incentives.store.tables import (
    AwardRow,
    BehaviourEventRow,
    BehaviourTypeRow,
    DeadLetterDecisionRow,
    PeriodRow,
    SchemeRow,
    SchemeVersionRow,
)
from services.platform.consumer import DeadLetterRow
from services.platform.errors import invalid
from services.platform.protobuf import enum_in, enum_out, ts_out, ts_required
from services.platform.resources import ID_PATTERN, etag_for, parse_name

# ---- enums and scalars ----------------------------------------------------------


def category_in(value: int, field: str, required: bool = True) -> BehaviourCategory | None:
    return enum_in(BehaviourCategory, behaviours_pb2.BehaviourCategory, value, "BEHAVIOUR_CATEGORY_", field, required)  # type: ignore[no-any-return]


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def finite(value: float, field: str) -> float:
    if math.isnan(value) or math.isinf(value):
        raise invalid(field, "must be a finite number")
    return value


def ref(name: str, collection: str, field: str) -> str | None:
    """An optional resource reference: `orgUnits/X` -> `X`, empty -> None."""
    return parse_name(name, collection, field, required=False) or None


# ---- amounts --------------------------------------------------------------------


def amount_out(value: Decimal, currency: str) -> schemes_pb2.Amount:
    if not currency:
        return schemes_pb2.Amount(points=float(value))
    units = int(value)
    nanos = int((value - units) * 1_000_000_000)
    return schemes_pb2.Amount(money=money_pb2.Money(currency_code=currency, units=units, nanos=nanos))


def amount_in(value: schemes_pb2.Amount, currency: str, field: str) -> Decimal:
    """An amount in the scheme's unit: money in its currency, or points."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise invalid(field, "is required")
    if currency:
        if kind != "money" or value.money.currency_code != currency:
            raise invalid(field, f"must be money in {currency}, the scheme's currency")
        m = value.money
        if abs(m.nanos) >= 1_000_000_000 or (m.units > 0 > m.nanos) or (m.units < 0 < m.nanos):
            raise invalid(f"{field}.money.nanos", "must be within ±999,999,999 and have the sign of units")
        amount = Decimal(m.units) + Decimal(m.nanos) / Decimal(1_000_000_000)
    else:
        if kind != "points":
            raise invalid(field, "must be points: the scheme pays points")
        amount = Decimal(repr(finite(value.points, f"{field}.points")))
    if amount < 0:
        raise invalid(field, "must not be negative")
    return amount.quantize(Decimal("0.01"))


# ---- behaviour types ------------------------------------------------------------


def behaviour_type_out(row: BehaviourTypeRow) -> behaviours_pb2.BehaviourType:
    name = f"behaviourTypes/{row.id}"
    return behaviours_pb2.BehaviourType(
        name=name,
        display_name=row.display_name,
        description=row.description,
        category=enum_out(behaviours_pb2.BehaviourCategory, "BEHAVIOUR_CATEGORY_", row.category),
        unit=row.unit,
        evidence_source=row.evidence_source,
        credits_provider=row.credits_provider,
        peer_recognition=row.peer_recognition,
        recognition_budget=row.recognition_budget,
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


# ---- behaviour events -----------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """A behaviour event as sent, checked for form (not yet for known people)."""

    id: str
    behaviour_type: str
    credits: tuple[tuple[str, float], ...]  # (person id, share as sent; 0 unset)
    occurred_at: datetime
    value: float
    customer_lob: str | None = None
    provider_lob: str | None = None
    related_org_unit: str | None = None
    source_system: str = ""
    object_ref: str = ""
    recipient: str | None = None  # peer recognition: the person thanked


MAX_CREDITS = 50


def observed_in(event_id: str, o: behaviours_pb2.BehaviourObserved, prefix: str, id_field: str) -> Observed:
    if not event_id or not ID_PATTERN.match(event_id):
        raise invalid(id_field, "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
    behaviour = parse_name(o.behaviour_type, "behaviourTypes", f"{prefix}.behaviour_type")
    if not o.credits:
        raise invalid(f"{prefix}.credits", "at least one person must be credited")
    if len(o.credits) > MAX_CREDITS:
        raise invalid(f"{prefix}.credits", f"at most {MAX_CREDITS} people may be credited")
    credits: list[tuple[str, float]] = []
    for i, c in enumerate(o.credits):
        person = parse_name(c.person, "people", f"{prefix}.credits[{i}].person")
        share = finite(c.share, f"{prefix}.credits[{i}].share")
        if not 0 <= share <= 1:
            raise invalid(f"{prefix}.credits[{i}].share", "must be between 0 and 1 (0: equal shares)")
        if any(p == person for p, _ in credits):
            raise invalid(f"{prefix}.credits[{i}].person", f"people/{person} is credited twice")
        credits.append((person, share))
    if not o.HasField("occurred_at"):
        raise invalid(f"{prefix}.occurred_at", "is required")
    return Observed(
        id=event_id,
        behaviour_type=behaviour,
        credits=tuple(credits),
        occurred_at=o.occurred_at.ToDatetime(tzinfo=UTC),
        value=finite(o.value, f"{prefix}.value") if o.value else 1.0,
        customer_lob=ref(o.customer_line_of_business, "orgUnits", f"{prefix}.customer_line_of_business"),
        provider_lob=ref(o.provider_line_of_business, "orgUnits", f"{prefix}.provider_line_of_business"),
        related_org_unit=ref(o.related_org_unit, "orgUnits", f"{prefix}.related_org_unit"),
        source_system=o.source_system[:200],
        object_ref=o.object_ref[:200],
        recipient=ref(o.recipient, "people", f"{prefix}.recipient"),
    )


def _unit(unit_id: str | None) -> str:
    return f"orgUnits/{unit_id}" if unit_id else ""


def behaviour_event_out(
    row: BehaviourEventRow, units: Sequence[tuple[str, str, str]] = ()
) -> behaviours_pb2.BehaviourEvent:
    """`units`: (person, org unit, line of business) of each credit when it happened."""
    observation = behaviours_pb2.BehaviourObserved(
        behaviour_type=f"behaviourTypes/{row.behaviour_type_id}",
        credits=[behaviours_pb2.Credit(person=f"people/{c['person']}", share=c["share"]) for c in row.credits],
        occurred_at=ts_out(aware(row.occurred_at)),
        value=row.value,
        customer_line_of_business=_unit(row.customer_lob),
        provider_line_of_business=_unit(row.provider_lob),
        related_org_unit=_unit(row.related_org_unit),
        source_system=row.source_system,
        object_ref=row.object_ref,
        recipient=f"people/{row.recipient}" if row.recipient else "",
    )
    return behaviours_pb2.BehaviourEvent(
        name=f"behaviourEvents/{row.id}",
        observation=observation,
        state=enum_out(behaviours_pb2.BehaviourEvent.State, "STATE_", row.state),
        park_reason=outcome_park_reason(row.park_reason),  # type: ignore[arg-type]
        park_detail=row.park_detail,
        credited_org_units=[f"orgUnits/{u}" for u in row.credited_org_units],
        record_time=ts_out(row.record_time),
        accept_time=ts_out(row.accept_time),
        credited_units=[
            behaviours_pb2.CreditedUnit(person=f"people/{person}", org_unit=_unit(unit), line_of_business=_unit(lob))
            for person, unit, lob in units
        ],
    )


def outcome_park_reason(reason: str) -> int:
    return int(enum_out(behaviours_pb2.BehaviourEvent.ParkReason, "PARK_REASON_", reason)) if reason else 0


# ---- schemes --------------------------------------------------------------------


def scheme_content_in(s: schemes_pb2.Scheme, prefix: str = "scheme") -> SchemeContent:
    """The content fields of a Scheme message, checked for form; `validate_scheme` checks the rules."""
    measures: list[Measure] = []
    for i, m in enumerate(s.measures):
        path = f"{prefix}.measures[{i}]"
        if not m.id or not ID_PATTERN.match(m.id):
            raise invalid(f"{path}.id", "must be 1-63 letters, digits, '.', '_' or '-'")
        measures.append(
            Measure(
                id=m.id,
                display_name=m.display_name or m.id,
                behaviour_types=tuple(
                    parse_name(b, "behaviourTypes", f"{path}.behaviour_types[{j}]")
                    for j, b in enumerate(m.behaviour_types)
                ),
                aggregation=enum_in(
                    Aggregation, schemes_pb2.Aggregation, m.aggregation, "AGGREGATION_", f"{path}.aggregation"
                ),
                weight=finite(m.weight, f"{path}.weight"),
                target=finite(m.target, f"{path}.target"),
                cap=finite(m.cap, f"{path}.cap") or None,
            )
        )
    p = s.payout
    kind = enum_in(
        PeriodKind, schemes_pb2.PeriodKind, s.calendar.period_kind, "PERIOD_KIND_", f"{prefix}.calendar.period_kind"
    )
    if not s.calendar.time_zone:
        raise invalid(f"{prefix}.calendar.time_zone", "is required (an IANA zone such as Europe/Amsterdam)")
    split = enum_in(
        CreditSplit, schemes_pb2.CreditSplit, s.credit_split, "CREDIT_SPLIT_", f"{prefix}.credit_split", False
    )
    return SchemeContent(
        display_name=s.display_name,
        description=s.description[:4000],
        calendar=Calendar(kind, s.calendar.time_zone),
        measures=tuple(measures),
        payout=PayoutCurve(
            currency=p.currency_code,
            target_payout=finite(p.target_payout, f"{prefix}.payout.target_payout"),
            tiers=tuple(
                Tier(
                    finite(t.from_attainment, f"{prefix}.payout.tiers[{i}].from_attainment"),
                    finite(t.rate, f"{prefix}.payout.tiers[{i}].rate"),
                )
                for i, t in enumerate(p.tiers)
            ),
            threshold=finite(p.threshold, f"{prefix}.payout.threshold"),
            cap_attainment=finite(p.cap_attainment, f"{prefix}.payout.cap_attainment") or None,
            max_payout=finite(p.max_payout, f"{prefix}.payout.max_payout") or None,
        ),
        credit_split=split or CreditSplit.SHARED,
        eligible_roles=tuple(
            parse_name(r, "roles", f"{prefix}.eligibility.roles[{i}]") for i, r in enumerate(s.eligibility.roles)
        ),
        eligible_units=tuple(
            parse_name(u, "orgUnits", f"{prefix}.eligibility.org_units[{i}]")
            for i, u in enumerate(s.eligibility.org_units)
        ),
        budget=finite(s.budget, f"{prefix}.budget"),
    )


def content_to_json(c: SchemeContent) -> dict[str, Any]:
    return {
        "display_name": c.display_name,
        "description": c.description,
        "calendar": {"period_kind": c.calendar.period_kind.value, "time_zone": c.calendar.time_zone},
        "measures": [
            {
                "id": m.id,
                "display_name": m.display_name,
                "behaviour_types": list(m.behaviour_types),
                "aggregation": m.aggregation.value,
                "weight": m.weight,
                "target": m.target,
                "cap": m.cap,
            }
            for m in c.measures
        ],
        "payout": {
            "currency": c.payout.currency,
            "target_payout": c.payout.target_payout,
            "tiers": [[t.from_attainment, t.rate] for t in c.payout.tiers],
            "threshold": c.payout.threshold,
            "cap_attainment": c.payout.cap_attainment,
            "max_payout": c.payout.max_payout,
        },
        "credit_split": c.credit_split.value,
        "eligible_roles": list(c.eligible_roles),
        "eligible_units": list(c.eligible_units),
        "budget": c.budget,
    }


def content_from_json(d: dict[str, Any]) -> SchemeContent:
    p = d["payout"]
    return SchemeContent(
        display_name=d["display_name"],
        description=d["description"],
        calendar=Calendar(PeriodKind(d["calendar"]["period_kind"]), d["calendar"]["time_zone"]),
        measures=tuple(
            Measure(
                m["id"],
                m["display_name"],
                tuple(m["behaviour_types"]),
                Aggregation(m["aggregation"]),
                m["weight"],
                m["target"],
                m["cap"],
            )
            for m in d["measures"]
        ),
        payout=PayoutCurve(
            p["currency"],
            p["target_payout"],
            tuple(Tier(f, r) for f, r in p["tiers"]),
            p["threshold"],
            p["cap_attainment"],
            p["max_payout"],
        ),
        credit_split=CreditSplit(d["credit_split"]),
        eligible_roles=tuple(d["eligible_roles"]),
        eligible_units=tuple(d["eligible_units"]),
        budget=d["budget"],
    )


def _scheme_message(name: str, c: SchemeContent) -> schemes_pb2.Scheme:
    return schemes_pb2.Scheme(
        name=name,
        display_name=c.display_name,
        description=c.description,
        eligibility=schemes_pb2.Eligibility(
            roles=[f"roles/{r}" for r in c.eligible_roles], org_units=[f"orgUnits/{u}" for u in c.eligible_units]
        ),
        calendar=schemes_pb2.Calendar(
            period_kind=enum_out(schemes_pb2.PeriodKind, "PERIOD_KIND_", c.calendar.period_kind),
            time_zone=c.calendar.time_zone,
        ),
        measures=[
            schemes_pb2.Measure(
                id=m.id,
                display_name=m.display_name,
                behaviour_types=[f"behaviourTypes/{b}" for b in m.behaviour_types],
                aggregation=enum_out(schemes_pb2.Aggregation, "AGGREGATION_", m.aggregation),
                weight=m.weight,
                target=m.target,
                cap=m.cap or 0.0,
            )
            for m in c.measures
        ],
        credit_split=enum_out(schemes_pb2.CreditSplit, "CREDIT_SPLIT_", c.credit_split),
        payout=schemes_pb2.PayoutCurve(
            currency_code=c.payout.currency,
            target_payout=c.payout.target_payout,
            threshold=c.payout.threshold,
            tiers=[schemes_pb2.Tier(from_attainment=t.from_attainment, rate=t.rate) for t in c.payout.tiers],
            cap_attainment=c.payout.cap_attainment or 0.0,
            max_payout=c.payout.max_payout or 0.0,
        ),
        budget=c.budget,
    )


def _version_info(v: SchemeVersionRow) -> schemes_pb2.SchemeVersion:
    return schemes_pb2.SchemeVersion(
        version=v.version,
        effective_from=v.effective_from,
        published_by=v.published_by,
        publish_time=ts_out(v.publish_time),
    )


def scheme_out(row: SchemeRow, versions: list[SchemeVersionRow]) -> schemes_pb2.Scheme:
    name = f"schemes/{row.id}"
    msg = _scheme_message(name, content_from_json(row.content))
    msg.state = enum_out(schemes_pb2.Scheme.State, "STATE_", row.state)
    msg.version = row.version
    msg.versions.extend(_version_info(v) for v in versions)
    msg.etag = etag_for(name, row.revision)
    msg.create_time.CopyFrom(ts_required(row.create_time))
    msg.update_time.CopyFrom(ts_required(row.update_time))
    return msg


def scheme_version_out(
    row: SchemeRow, version: SchemeVersionRow, versions: list[SchemeVersionRow]
) -> schemes_pb2.Scheme:
    msg = _scheme_message(f"schemes/{row.id}@{version.version}", content_from_json(version.content))
    msg.state = enum_out(schemes_pb2.Scheme.State, "STATE_", row.state)
    msg.version = version.version
    msg.versions.extend(_version_info(v) for v in versions)
    msg.create_time.CopyFrom(ts_required(version.publish_time))
    msg.update_time.CopyFrom(ts_required(version.publish_time))
    return msg


# ---- scorecards, periods, awards -----------------------------------------------


def score_to_json(result: Score, late: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Lines as stored on a frozen scorecard (and as read from a live one)."""
    return [
        {
            "measure": line.measure.id,
            "display_name": line.measure.display_name,
            "aggregation": line.measure.aggregation.value,
            "value": line.value,
            "target": line.measure.target,
            "attainment": line.attainment,
            "weight": line.measure.weight,
            "weighted_attainment": line.weighted_attainment,
            "contributions": [
                {
                    "event": k.contribution.event_id,
                    "behaviour_type": k.contribution.behaviour_type,
                    "occurred_at": aware(k.contribution.occurred_at).isoformat(),
                    "value": k.contribution.value,
                    "share": k.share,
                    "late_from_period": k.contribution.late_from_period,
                }
                for k in line.counted
            ],
        }
        for line in result.lines
    ]


def scorecard_out(
    scheme_id: str,
    period: Period,
    person_id: str,
    version: int,
    attainment: float,
    payout: Decimal,
    currency: str,
    final: bool,
    computed: datetime,
) -> scorecards_pb2.Scorecard:
    """A scorecard without its lines: `add_score_lines` or `add_frozen_lines` fill them in place
    (a line or contribution built apart would be copied into its parent again)."""
    return scorecards_pb2.Scorecard(
        name=f"schemes/{scheme_id}/periods/{period.id}/scorecards/{person_id}",
        person=f"people/{person_id}",
        scheme_version=version,
        start_time=ts_out(period.start),
        end_time=ts_out(period.end),
        state=scorecards_pb2.Scorecard.STATE_FINAL if final else scorecards_pb2.Scorecard.STATE_OPEN,
        attainment=attainment,
        payout=amount_out(payout, currency),
        compute_time=ts_out(computed),
    )


def add_frozen_lines(card: scorecards_pb2.Scorecard, lines: list[dict[str, Any]]) -> None:
    """Lines as stored on a frozen scorecard (`score_to_json`)."""
    for line in lines:
        add = card.lines.add(
            measure=line["measure"],
            display_name=line["display_name"],
            aggregation=enum_out(schemes_pb2.Aggregation, "AGGREGATION_", line["aggregation"]),
            value=line["value"],
            target=line["target"],
            attainment=line["attainment"],
            weight=line["weight"],
            weighted_attainment=line["weighted_attainment"],
        ).contributions.add
        for k in line["contributions"]:
            c = add(
                behaviour_event=f"behaviourEvents/{k['event']}",
                behaviour_type=f"behaviourTypes/{k['behaviour_type']}",
                value=k["value"],
                share=k["share"],
                late_from_period=k["late_from_period"],
            )
            _set_time(c.occurred_at, datetime.fromisoformat(k["occurred_at"]))


def add_score_lines(card: scorecards_pb2.Scorecard, result: Score) -> None:
    """The same lines straight from a computed score (an open scorecard), without the JSON between."""
    for line in result.lines:
        measure = line.measure
        add = card.lines.add(
            measure=measure.id,
            display_name=measure.display_name,
            aggregation=enum_out(schemes_pb2.Aggregation, "AGGREGATION_", measure.aggregation.value),
            value=line.value,
            target=measure.target,
            attainment=line.attainment,
            weight=measure.weight,
            weighted_attainment=line.weighted_attainment,
        ).contributions.add
        for k in line.counted:
            credit = k.contribution
            c = add(
                behaviour_event=f"behaviourEvents/{credit.event_id}",
                behaviour_type=f"behaviourTypes/{credit.behaviour_type}",
                value=credit.value,
                share=k.share,
                late_from_period=credit.late_from_period,
            )
            _set_time(c.occurred_at, credit.occurred_at)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _set_time(target: Timestamp, at: datetime) -> None:
    """Sets a message's Timestamp field in place, by arithmetic (FromDatetime costs several
    times more, a Timestamp built apart is copied in). Setting it makes it present, even at 0."""
    delta = aware(at) - _EPOCH
    target.seconds = delta.days * 86400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def period_out(
    scheme_id: str,
    period: Period,
    version: int,
    row: PeriodRow | None,
    award_count: int,
    total: Decimal,
    budget: float,
    currency: str,
) -> awards_pb2.Period:
    over = budget > 0 and total > Decimal(repr(budget))
    return awards_pb2.Period(
        name=f"schemes/{scheme_id}/periods/{period.id}",
        start_time=ts_out(period.start),
        end_time=ts_out(period.end),
        state=awards_pb2.Period.STATE_CLOSED if row else awards_pb2.Period.STATE_OPEN,
        scheme_version=version,
        close_time=ts_out(row.close_time) if row else None,
        closed_by=row.closed_by if row else "",
        award_count=award_count,
        total_awarded=amount_out(total, currency),
        budget=amount_out(Decimal(repr(budget)).quantize(Decimal("0.01")), currency),
        over_budget=over,
    )


def award_out(row: AwardRow) -> awards_pb2.Award:
    name = f"schemes/{row.scheme_id}/periods/{row.period_id}/awards/{row.person_id}"
    return awards_pb2.Award(
        name=name,
        person=f"people/{row.person_id}",
        scheme=f"schemes/{row.scheme_id}",
        period=row.period_id,
        scheme_version=row.scheme_version,
        attainment=row.attainment,
        proposed_amount=amount_out(Decimal(row.proposed_amount), row.currency),
        amount=amount_out(Decimal(row.amount), row.currency),
        state=enum_out(awards_pb2.Award.State, "STATE_", row.state),
        adjustments=[
            awards_pb2.AwardAdjustment(
                from_amount=amount_out(Decimal(a["from"]), row.currency),
                to_amount=amount_out(Decimal(a["to"]), row.currency),
                reason=a["reason"],
                adjusted_by=a["by"],
                adjust_time=ts_out(datetime.fromisoformat(a["at"])),
            )
            for a in row.adjustments
        ],
        approved_by=row.approved_by,
        approve_time=ts_out(row.approve_time),
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


# ---- dead letters ---------------------------------------------------------------


def dead_letter_out(
    row: DeadLetterRow, decision: DeadLetterDecisionRow | None, *, with_body: bool = True
) -> dead_letters_pb2.DeadLetter:
    name = f"deadLetters/{row.id}"
    state = decision.state if decision else "PENDING"
    return dead_letters_pb2.DeadLetter(
        name=name,
        consumer=row.consumer,
        subject=row.subject,
        stream_sequence=row.stream_sequence,
        event_id=row.event_id,
        headers={str(k): str(v) for k, v in row.headers.items()} if with_body else {},
        data=row.data if with_body else b"",
        error=row.error,
        deliveries=row.deliveries,
        create_time=ts_out(row.created_at),
        state=enum_out(dead_letters_pb2.DeadLetter.State, "STATE_", state),
        decision_reason=decision.reason if decision else "",
        decided_by=decision.decided_by if decision else "",
        decide_time=ts_out(decision.decide_time) if decision else None,
        etag=etag_for(name, decision.revision if decision else 1),
    )


__all__ = ["EventState", "ParkReason"]
