"""The API's JSON shapes convert protobuf values exactly."""

from __future__ import annotations

import random
from datetime import UTC

import httpx
from engage.roles.v1 import directory_pb2, roles_pb2
from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2
from pydantic import BaseModel

from gateway import models
from gateway.api import _resource
from gateway.models import _time


def test_timestamps_convert_as_protobuf_does_over_the_whole_range() -> None:
    edges = [(-62135596800, 0), (253402300799, 999999999), (0, 1), (1, 999), (-1, 999999999), (1700000000, 123456789)]
    rng = random.Random(7)
    samples = edges + [(rng.randint(-62135596800, 253402300799), rng.randint(0, 999999999)) for _ in range(5000)]
    for seconds, nanos in samples:
        ts = Timestamp(seconds=seconds, nanos=nanos)
        assert _time(ts) == ts.ToDatetime(tzinfo=UTC), (seconds, nanos)
    assert _time(Timestamp()) is None  # unset


async def test_a_read_answers_the_json_fastapi_would_send() -> None:
    """Reads serialise their answer once (`api._resource`) instead of returning the model for FastAPI to
    validate and serialise against the route's `response_model`: the body must be the same bytes."""
    person = directory_pb2.Person(
        name="people/E1",
        display_name='Zoë "Z" Ünal',
        email="z@example.com",
        org_unit="orgUnits/U",
        manager="people/M",
        management_level=3,  # type: ignore[arg-type]
        status=directory_pb2.PERSON_STATUS_LEAVE,
        hr_version=7,
        etag="e1",
        create_time=Timestamp(seconds=1700000000),
        update_time=Timestamp(seconds=1700000001, nanos=123456789),
    )
    role = roles_pb2.Role(
        name="roles/r@2",
        display_name="Role",
        purpose="Purpose",
        responsibilities=["one", "two"],
        management_level=4,  # type: ignore[arg-type]
        decision_rights=[
            roles_pb2.DecisionRight(
                category="decisionCategories/c",
                authority=roles_pb2.AUTHORITY_DECIDE,
                limit=money_pb2.Money(currency_code="EUR", units=500, nanos=500_000_000),
            ),
            roles_pb2.DecisionRight(category="decisionCategories/d", authority=roles_pb2.AUTHORITY_INPUT),
        ],
        skill_requirements=[roles_pb2.SkillRequirement(skill="skills/s", min_level=3, weight=0.25, mandatory=True)],
        state=roles_pb2.Role.STATE_RETIRED,
        version=2,
        etag="r2",
        create_time=Timestamp(seconds=-1, nanos=1000),
    )
    answers: dict[str, BaseModel] = {"person": models.Person.of(person), "role": models.Role.of(role)}
    app = FastAPI()
    for key, answer in answers.items():
        app.add_api_route(f"/model/{key}", lambda answer=answer: answer, response_model=type(answer))
        app.add_api_route(f"/resource/{key}", lambda answer=answer: _resource(answer, "tag"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        for key in answers:
            fastapi, ours = await client.get(f"/model/{key}"), await client.get(f"/resource/{key}")
            assert fastapi.status_code == ours.status_code == 200
            assert ours.content == fastapi.content
            assert ours.headers["content-type"] == fastapi.headers["content-type"]
            assert ours.headers["etag"] == '"tag"'
