"""Keeps docs/asyncapi.yaml honest against the code that publishes the events.

- the document is YAML and AsyncAPI 3.0, every channel has one `receive`
  operation and every `$ref` resolves;
- its channel addresses are exactly the subjects the roles service can emit,
  found by reading the source: the builders of services/roles/events/outgoing.py
  (builder -> entity and body message) and every call of a builder under
  services/roles (-> verbs);
- each channel's payload names the protobuf message its builder sends, that
  message exists in `engage.roles.v1.events_pb2`, and the field and enum names
  the document shows are those of the .proto;
- the headers schema documents exactly the `ce-*` headers that
  `CloudEvent.headers()` sets, plus `Nats-Msg-Id`, and requires them.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from engage.roles.v1 import events_pb2
from google.protobuf import descriptor_pool

from services.platform.cloudevents import CloudEvent
from services.platform.jetstream import DUPLICATE_WINDOW_SECONDS
from services.platform.settings import ServiceSettings
from services.roles.events import outgoing

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"
ROLES = ROOT / "services" / "roles"
OUTGOING = ROLES / "events" / "outgoing.py"
EVENTS_PACKAGE = events_pb2.DESCRIPTOR.package  # engage.roles.v1


# ---- reading the code ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Builder:
    entity: str  # first argument of `_event(...)`
    body: str  # events_pb2 message the builder constructs


def builders() -> dict[str, Builder]:
    """The public `*_event` builders of outgoing.py: each calls `_event` with
    a literal entity and builds one `events_pb2.<Message>` body."""
    found: dict[str, Builder] = {}
    for fn in ast.parse(OUTGOING.read_text()).body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        entities, bodies = set(), set()
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id == "_event":
                arg = node.args[0]
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"outgoing.{fn.name}: the entity passed to _event must be a string literal"
                )
                entities.add(arg.value)
            elif (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "events_pb2"
            ):
                bodies.add(node.func.attr)
        if entities:
            assert len(entities) == 1 and len(bodies) == 1, (
                f"outgoing.{fn.name}: expected one entity and one events_pb2 body, got {entities} and {bodies}"
            )
            found[fn.name] = Builder(entities.pop(), bodies.pop())
    assert found, "no event builders found in services/roles/events/outgoing.py"
    return found


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """Nodes of a module or function, not descending into nested functions."""
    nodes: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        nodes.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return nodes


def _possible_strings(
    expr: ast.expr, assigned: dict[str, list[ast.expr]], where: str, seen: frozenset[str]
) -> set[str]:
    """Every string an expression can evaluate to: literals, both arms of
    `a if c else b`, and local variables through their assignments."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return set().union(*(_possible_strings(arm, assigned, where, seen) for arm in (expr.body, expr.orelse)))
    if isinstance(expr, ast.Name) and expr.id in assigned and expr.id not in seen:
        values: set[str] = set()
        for value in assigned[expr.id]:
            values |= _possible_strings(value, assigned, where, seen | {expr.id})
        return values
    raise AssertionError(
        f"{where}: cannot tell which verbs `{ast.unparse(expr)}` stands for; "
        "pass a literal, `a if c else b`, or a local variable assigned such values"
    )


def emitted_verbs(names: dict[str, Builder]) -> dict[str, set[str]]:
    """Builder name -> verbs it is called with anywhere under services/roles."""
    verbs: dict[str, set[str]] = {name: set() for name in names}
    for path in sorted(ROLES.rglob("*.py")):
        if path == OUTGOING:
            continue
        module = ast.parse(path.read_text(), filename=str(path))
        aliases = {name: name for name in names}
        for node in ast.walk(module):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in names:
                        aliases[alias.asname or alias.name] = alias.name
        scopes: list[ast.AST] = [module]
        scopes += [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for scope in scopes:
            own = _own_nodes(scope)
            assigned: dict[str, list[ast.expr]] = {}
            for node in own:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            assigned.setdefault(target.id, []).append(node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    assigned.setdefault(node.target.id, []).append(node.value or ast.Constant(None))
            for node in own:
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                builder = aliases.get(called)
                if builder is None:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                verb = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "verb"), None)
                assert verb is not None, f"{where}: {called}() without a verb"
                verbs[builder] |= _possible_strings(verb, assigned, where, frozenset())
    return verbs


def subject_of(entity: str, verb: str) -> str:
    """The subject (= ce-type) the code gives an event, asked of the code itself."""
    return outgoing._event(entity, verb, "x/1", events_pb2.RoleEvent(), 1).type


@pytest.fixture(scope="module")
def emitted() -> dict[str, Builder]:
    """Subject -> builder for every event the roles service can publish."""
    names = builders()
    subjects: dict[str, Builder] = {}
    for name, verbs in emitted_verbs(names).items():
        for verb in verbs:
            subjects[subject_of(names[name].entity, verb)] = names[name]
    assert subjects, "found no calls of the event builders under services/roles"
    return subjects


def sample_headers() -> dict[str, str]:
    """Headers of an event with every attribute set (empty ones are left out)."""
    event = CloudEvent.of(
        subject_of("role", "created"),
        outgoing.SOURCE,
        "roles/sample",
        events_pb2.RoleEvent(),
        sequence=1,
        authid="people/E1",
    )
    blanks = {f.name: "x" for f in dataclasses.fields(event) if getattr(event, f.name) == ""}
    return dataclasses.replace(event, **blanks).headers()


# ---- reading the document -------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOC.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follows local `$ref`s (`#/a/b`) until a node that is not a reference."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert isinstance(ref, str) and ref.startswith("#/"), f"only local references are used, got {ref!r}"
        assert ref not in seen, f"reference cycle at {ref}"
        seen.add(ref)
        node = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"unresolved reference {ref}"
            node = node[part]
    return node


def merged(doc: dict[str, Any], schema: Any) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Properties (merged key by key) and required names of a schema with allOf."""
    schema = resolve(doc, schema)
    properties: dict[str, dict[str, Any]] = {}
    required: set[str] = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        sub_properties, sub_required = merged(doc, part)
        for key, value in sub_properties.items():
            properties[key] = {**properties.get(key, {}), **value}
        required |= sub_required
    for key, value in schema.get("properties", {}).items():
        properties[key] = {**properties.get(key, {}), **resolve(doc, value)}
    return properties, required


def channel_messages(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(channel address, resolved message) for every message of every channel."""
    return [
        (channel["address"], resolve(doc, message))
        for channel in doc["channels"].values()
        for message in channel["messages"].values()
    ]


# ---- tests ------------------------------------------------------------------------


def test_document_is_asyncapi_3_yaml(doc: dict[str, Any]) -> None:
    assert str(doc["asyncapi"]).startswith("3.0.")
    assert doc["defaultContentType"] == "application/protobuf"
    assert {s["protocol"] for s in doc["servers"].values()} == {"nats"}
    operations = doc["operations"]
    by_channel: dict[str, list[str]] = {}
    for op_id, op in operations.items():
        assert op["action"] == "receive", f"{op_id}: consumers receive"
        channel = resolve(doc, op["channel"])
        by_channel.setdefault(channel["address"], []).append(op_id)
        for message in op["messages"]:
            assert message["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), (
                f"{op_id}: its messages must be those of its channel"
            )
            resolve(doc, message)
    addresses = [c["address"] for c in doc["channels"].values()]
    assert len(addresses) == len(set(addresses)), "one channel per subject"
    assert {a: len(by_channel.get(a, [])) for a in addresses} == dict.fromkeys(addresses, 1), (
        "every channel has exactly one receive operation"
    )


def test_server_describes_the_stream_the_code_creates(doc: dict[str, Any]) -> None:
    (server,) = doc["servers"].values()
    jetstream = server["x-jetstream"]
    assert jetstream["stream"] == ServiceSettings.model_fields["nats_stream"].default
    assert jetstream["duplicate_window_seconds"] == DUPLICATE_WINDOW_SECONDS
    assert jetstream["deduplication_header"] in sample_headers()


def test_channels_are_exactly_the_emitted_subjects(doc: dict[str, Any], emitted: dict[str, Builder]) -> None:
    documented = {c["address"] for c in doc["channels"].values()}
    assert documented == set(emitted), (
        f"undocumented subjects: {sorted(set(emitted) - documented)}; "
        f"documented but never emitted: {sorted(documented - set(emitted))}"
    )


def test_payloads_are_the_protobuf_messages_sent(doc: dict[str, Any], emitted: dict[str, Builder]) -> None:
    available = events_pb2.DESCRIPTOR.message_types_by_name
    for address, message in channel_messages(doc):
        assert message["contentType"] == "application/protobuf", address
        full_name = resolve(doc, message["payload"])["x-protobuf-message"]
        package, _, short = full_name.rpartition(".")
        assert package == EVENTS_PACKAGE and short in available, f"{address}: {full_name} is not in events_pb2"
        if address in emitted:
            assert short == emitted[address].body, f"{address}: the code sends {emitted[address].body}, not {short}"
        headers, _ = merged(doc, message["headers"])
        assert headers["ce-dataschema"].get("const") == f"proto:{full_name}", address
        assert address in headers["ce-type"].get("enum", []), f"{address}: missing from its message's ce-type enum"


def _check_schema(
    doc: dict[str, Any], schema: dict[str, Any], pool: descriptor_pool.DescriptorPool, where: str
) -> None:
    """Field names equal the .proto's, enum values its value names, recursively."""
    if "x-protobuf-enum" in schema:
        values = [v.name for v in pool.FindEnumTypeByName(schema["x-protobuf-enum"]).values]
        assert schema["enum"] == values, f"{where}: enum values differ from {schema['x-protobuf-enum']}"
    if "x-protobuf-message" in schema:
        fields = {f.name for f in pool.FindMessageTypeByName(schema["x-protobuf-message"]).fields}
        assert set(schema["properties"]) == fields, (
            f"{where} ({schema['x-protobuf-message']}): documented {sorted(schema['properties'])}, "
            f".proto has {sorted(fields)}"
        )
    for name, sub in schema.get("properties", {}).items():
        _check_schema(doc, resolve(doc, sub), pool, f"{where}.{name}")
    if "items" in schema:
        _check_schema(doc, resolve(doc, schema["items"]), pool, f"{where}[]")


def test_payload_schemas_follow_the_proto(doc: dict[str, Any]) -> None:
    pool = descriptor_pool.Default()
    for address, message in channel_messages(doc):
        _check_schema(doc, resolve(doc, message["payload"]), pool, address)


def test_every_header_the_code_sets_is_documented(doc: dict[str, Any]) -> None:
    sent = set(sample_headers())
    assert "Nats-Msg-Id" in sent
    for address, message in channel_messages(doc):
        documented, required = merged(doc, message["headers"])
        assert sent <= set(documented), f"{address}: undocumented headers {sorted(sent - set(documented))}"
        assert sent <= required, f"{address}: headers always sent but not required: {sorted(sent - required)}"
        stale = {h for h in documented if h.startswith("ce-")} - sent
        assert not stale, f"{address}: documented ce-* headers the code never sets: {sorted(stale)}"
        for header in sent:
            assert documented[header].get("description"), f"{address}: header {header} has no description"


def test_sample_event_matches_header_constants(doc: dict[str, Any]) -> None:
    """The fixed values the document promises are the ones the code sends."""
    headers = sample_headers()
    schema, _ = merged(doc, doc["components"]["schemas"]["CloudEventHeaders"])
    for name in ("ce-specversion", "ce-source", "ce-datacontenttype"):
        assert schema[name]["const"] == headers[name], name
    assert headers["Nats-Msg-Id"] == headers["ce-id"]
