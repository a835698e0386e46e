"""Role definitions, hierarchies and the AIP helpers."""

from decimal import Decimal

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.platform.cloudevents import CloudEvent
from services.platform.errors import InvalidArgument
from services.platform.resources import check_etag, etag_for, mask_paths, page_of, parse_name
from services.roles.domain.hierarchy import in_cycles, paths, would_cycle
from services.roles.domain.model import Authority, DecisionRight, Money, RoleContent, validate_role

BANDS = {"refund": (1, 3), "market-entry": (6, 7)}


def content(level: int, *rights: DecisionRight) -> RoleContent:
    return RoleContent("p", ("r",), level, rights)


def test_decide_on_a_strategic_category_needs_a_high_enough_level():
    with pytest.raises(InvalidArgument) as err:
        validate_role(content(3, DecisionRight("market-entry", Authority.DECIDE)), BANDS)
    assert err.value.violations[0].field == "role.decision_rights[0].authority"
    validate_role(content(3, DecisionRight("market-entry", Authority.RECOMMEND)), BANDS)
    validate_role(content(7, DecisionRight("market-entry", Authority.DECIDE)), BANDS)


def test_unknown_category_duplicate_right_and_limit_on_non_decide_are_named():
    limit = Money(Decimal(1), "EUR")
    bad = content(
        3,
        DecisionRight("nope", Authority.DECIDE),
        DecisionRight("refund", Authority.DECIDE),
        DecisionRight("refund", Authority.CONSULT, limit),
    )
    with pytest.raises(InvalidArgument) as err:
        validate_role(bad, BANDS)
    fields = {v.field for v in err.value.violations}
    assert {
        "role.decision_rights[0].category",
        "role.decision_rights[2].category",
        "role.decision_rights[2].limit",
    } <= fields


def test_cycles_are_found_and_paths_built():
    parent = {"a": None, "b": "a", "c": "b", "x": "y", "y": "x", "z": "x"}
    assert in_cycles(parent) == {"x", "y", "z"}
    good = {k: v for k, v in parent.items() if k in "abc"}
    assert paths(good) == {"a": "/a/", "b": "/a/b/", "c": "/a/b/c/"}
    assert would_cycle("a", "c", good) and not would_cycle("c", "a", good)


def test_page_token_is_bound_to_its_filters():
    first = page_of(2, "", unit="X")
    token = first.next_token("id-2", 2)
    assert page_of(2, token, unit="X").after == "id-2"
    with pytest.raises(InvalidArgument):
        page_of(2, token, unit="Y")
    with pytest.raises(InvalidArgument):
        page_of(2, "garbage!!", unit="X")
    assert page_of(5000, "").size == 1000
    assert first.next_token("id-1", 1) == ""  # a short page is the last


def test_field_mask_rejects_unknown_paths_and_expands_star():
    assert mask_paths(FieldMask(paths=["*"]), {"a", "b"}) == {"a", "b"}
    with pytest.raises(InvalidArgument) as err:
        mask_paths(FieldMask(paths=["a", "secret"]), {"a", "b"})
    assert err.value.violations[0].field == "update_mask"


def test_names_and_etags():
    assert parse_name("people/E1", "people", "person") == "E1"
    with pytest.raises(InvalidArgument) as err:
        parse_name("persons/E1", "people", "assignment.person")
    assert err.value.violations[0].field == "assignment.person"
    check_etag(etag_for("roles/x", 3), "roles/x", 3)
    with pytest.raises(Exception, match="changed since"):
        check_etag(etag_for("roles/x", 2), "roles/x", 3)


def test_cloudevent_headers_round_trip_with_percent_encoding():
    event = CloudEvent(
        type="engage.roles.v1.role.created",
        source="/engage/roles",
        subject="roles/a b",
        data=b"\x01",
        dataschema="proto:x",
        sequence=4,
        authid='people/"E1"%',
    )
    headers = event.headers()
    assert headers["Nats-Msg-Id"] == event.id == headers["ce-id"]
    assert headers["ce-subject"] == "roles/a%20b"
    back = CloudEvent.from_message(headers, b"\x01")
    assert (back.subject, back.authid, back.sequence, back.id) == ("roles/a b", 'people/"E1"%', 4, event.id)
    with pytest.raises(ValueError):
        CloudEvent.from_message({"ce-id": "1"}, b"")
