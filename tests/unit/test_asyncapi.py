"""Keeps docs/asyncapi.yaml honest against the code that publishes and consumes the events.

- the document is YAML and AsyncAPI 3.0, every `$ref` resolves, every channel
  has exactly one operation: `receive` for what Engage publishes (on the
  ENGAGE server), `send` for what a CRM system publishes to Engage (on the
  CRM server);
- its ENGAGE channel addresses are exactly the subjects the roles, skills
  and incentives services can emit, found by reading the source of each: the
  builders of services/<svc>/events/outgoing.py (builder -> entity, body
  message and verb, either a parameter or fixed in the builder), every call of
  a builder under services/<svc> (-> verbs), following local helpers that pass
  a verb parameter on to a builder;
- each channel's payload names the protobuf message its builder sends, that
  message exists in `engage.<svc>.v1.events_pb2`, and the field and enum names
  the document shows are those of the .proto;
- the headers schema documents exactly the `ce-*` headers that
  `CloudEvent.headers()` sets, plus `Nats-Msg-Id`, requires them, and fixes
  `ce-source` per service;
- the CRM channel is the subject filter and stream the incentives consumer
  reads, its body the message the handler parses, its required headers those
  the consumer cannot do without, and its `ce-id` pattern the one enforced.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from google.protobuf import descriptor_pool

from services.incentives.settings import IncentivesSettings
from services.platform.cloudevents import CloudEvent
from services.platform.jetstream import DUPLICATE_WINDOW_SECONDS
from services.platform.resources import ID_PATTERN
from services.platform.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"
SERVICES = ("roles", "skills", "incentives")
INCENTIVES = ROOT / "services" / "incentives"
ENGAGE_SERVER = "engage"
CRM_SERVER = "crm"


@dataclasses.dataclass(frozen=True)
class Service:
    name: str  # roles, skills, incentives

    @property
    def root(self) -> Path:
        return ROOT / "services" / self.name

    @property
    def outgoing_path(self) -> Path:
        return self.root / "events" / "outgoing.py"

    @property
    def outgoing(self) -> ModuleType:
        return importlib.import_module(f"services.{self.name}.events.outgoing")

    @property
    def events_pb2(self) -> ModuleType:
        return importlib.import_module(f"engage.{self.name}.v1.events_pb2")

    @property
    def package(self) -> str:
        return str(self.events_pb2.DESCRIPTOR.package)  # engage.<svc>.v1


# ---- reading the code ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Builder:
    service: Service
    entity: str  # first argument of `_event(...)`
    body: str  # events_pb2 message the builder constructs
    verb_param: tuple[int, str] | None  # (position, name) of the builder's verb parameter
    fixed_verbs: frozenset[str] = frozenset()  # verbs written into the builder itself


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Positional parameter names as a caller passes them (without self/cls)."""
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    assigned: dict[str, list[ast.expr]] = {}
    for node in _own_nodes(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assigned.setdefault(node.target.id, []).append(node.value or ast.Constant(None))
    return assigned


def _argument(call: ast.Call, position: int, name: str) -> ast.expr | None:
    if len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _forwarded_param(expr: ast.expr, scope: ast.AST, assigned: dict[str, list[ast.expr]]) -> tuple[int, str] | None:
    """(position, name) if `expr` is a parameter of the function `scope` that it
    passes on unchanged, else None."""
    if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef) or not isinstance(expr, ast.Name):
        return None
    params = _params(scope)
    if expr.id in params and expr.id not in assigned:
        return params.index(expr.id), expr.id
    return None


def builders(service: Service) -> dict[str, Builder]:
    """The public builders of outgoing.py: each calls `_event` with a literal
    entity, a verb (its own parameter, or fixed strings) and builds one
    `events_pb2.<Message>` body."""
    found: dict[str, Builder] = {}
    where = service.outgoing_path.relative_to(ROOT)
    for fn in ast.parse(service.outgoing_path.read_text()).body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        assigned = _assignments(fn)
        entities: set[str] = set()
        bodies: set[str] = set()
        params: set[tuple[int, str]] = set()
        fixed: set[str] = set()
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id == "_event":
                arg = node.args[0]
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{where}:{fn.name}: the entity passed to _event must be a string literal"
                )
                entities.add(arg.value)
                verb = _argument(node, 1, "verb")
                assert verb is not None, f"{where}:{fn.name}: _event() without a verb"
                param = _forwarded_param(verb, fn, assigned)
                if param is not None:
                    params.add(param)
                else:
                    fixed |= _possible_strings(verb, assigned, f"{where}:{fn.name}", frozenset())
            elif (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "events_pb2"
            ):
                bodies.add(node.func.attr)
        if entities:
            assert len(entities) == 1 and len(bodies) == 1, (
                f"{where}:{fn.name}: expected one entity and one events_pb2 body, got {entities} and {bodies}"
            )
            assert len(params) <= 1 and not (params and fixed), (
                f"{where}:{fn.name}: the verb must be one parameter or fixed strings, got {params} and {fixed}"
            )
            found[fn.name] = Builder(
                service, entities.pop(), bodies.pop(), params.pop() if params else None, frozenset(fixed)
            )
    assert found, f"no event builders found in {where}"
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
        f"{where}: cannot tell which verbs `{ast.unparse(expr)}` stands for; pass a literal, "
        "`a if c else b`, a local variable assigned such values, or a parameter of a helper called so"
    )


@dataclasses.dataclass(frozen=True)
class Callee:
    """Something that emits a builder's event: the builder or a helper passing its verb on."""

    builder: str
    verb_param: tuple[int, str] | None


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def emitted_verbs(service: Service, names: dict[str, Builder]) -> dict[str, set[str]]:
    """Builder name -> verbs it is called with anywhere under services/<svc>,
    directly or through helpers (in the same module, or imported by name)
    whose verb parameter reaches a builder unchanged."""
    modules = {
        path: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(service.root.rglob("*.py"))
        if path != service.outgoing_path
    }
    wrappers: dict[tuple[Path, str], Callee] = {}
    while True:
        verbs: dict[str, set[str]] = {name: set() for name in names}
        new: dict[tuple[Path, str], Callee] = {}
        for path, module in modules.items():
            callees = {name: Callee(name, b.verb_param) for name, b in names.items()}
            callees |= {fn: c for (p, fn), c in wrappers.items() if p == path}
            for node in ast.walk(module):
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        local = alias.asname or alias.name
                        if alias.name in names:
                            callees[local] = Callee(alias.name, names[alias.name].verb_param)
                        for (p, fn), c in wrappers.items():
                            if fn == alias.name and node.module == _dotted(p):
                                callees[local] = c
            scopes: list[ast.AST] = [module]
            scopes += [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            for scope in scopes:
                assigned = _assignments(scope)
                for node in _own_nodes(scope):
                    if not isinstance(node, ast.Call):
                        continue
                    func = node.func
                    called = (
                        func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                    )
                    callee = callees.get(called)
                    if callee is None:
                        continue
                    builder = names[callee.builder]
                    if callee.verb_param is None:
                        verbs[callee.builder] |= builder.fixed_verbs
                        continue
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    verb = _argument(node, *callee.verb_param)
                    assert verb is not None, f"{where}: {called}() without a verb"
                    param = _forwarded_param(verb, scope, assigned)
                    if param is not None:
                        assert isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef)
                        new[(path, scope.name)] = Callee(callee.builder, param)
                    else:
                        verbs[callee.builder] |= _possible_strings(verb, assigned, where, frozenset())
        if new.keys() <= wrappers.keys():
            return verbs
        wrappers |= new


def subject_of(builder: Builder, verb: str) -> str:
    """The subject (= ce-type) the code gives an event, asked of the code itself."""
    body = getattr(builder.service.events_pb2, builder.body)()
    return str(builder.service.outgoing._event(builder.entity, verb, "x/1", body, 1).type)


@cache
def emitted_subjects() -> dict[str, Builder]:
    """Subject -> builder for every event the services can publish."""
    subjects: dict[str, Builder] = {}
    for name in SERVICES:
        service = Service(name)
        names = builders(service)
        found = {
            subject_of(names[builder], verb): names[builder]
            for builder, verbs in emitted_verbs(service, names).items()
            for verb in verbs
        }
        assert found, f"found no calls of the event builders under services/{name}"
        subjects |= found
    return subjects


@pytest.fixture(scope="module")
def emitted() -> dict[str, Builder]:
    return emitted_subjects()


def sample_headers(service: Service) -> dict[str, str]:
    """Headers of an event of `service` with every attribute set (empty ones are left out)."""
    builder = next(b for b in emitted_subjects().values() if b.service == service)
    event = CloudEvent.of(
        subject_of(builder, "created"),
        service.outgoing.SOURCE,
        "things/sample",
        getattr(service.events_pb2, builder.body)(),
        sequence=1,
        authid="people/E1",
    )
    blanks = {f.name: "x" for f in dataclasses.fields(event) if getattr(event, f.name) == ""}
    return dataclasses.replace(event, **blanks).headers()


# ---- reading the CRM consumer -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Consumed:
    stream: str
    subjects: list[str]
    body: str  # full name of the protobuf message the handler parses


@cache
def crm_consumer() -> Consumed:
    """The consumer of incentives/main.py on the CRM stream, and the message its handler parses."""
    settings = IncentivesSettings.model_fields
    main = ast.parse((INCENTIVES / "main.py").read_text())
    handlers = [
        kw.value
        for call in ast.walk(main)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "EventConsumer"
        if any(
            k.arg == "stream" and isinstance(k.value, ast.Attribute) and k.value.attr == "crm_stream"
            for k in call.keywords
        )
        for kw in call.keywords
        if kw.arg == "handler"
    ]
    assert len(handlers) == 1 and isinstance(handlers[0], ast.Name), "one EventConsumer on settings.crm_stream"
    handler = handlers[0].id
    (module,) = [
        node.module
        for node in ast.walk(main)
        if isinstance(node, ast.ImportFrom) and any(a.name == handler for a in node.names)
    ]
    assert module is not None
    source = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
    protos = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in ast.walk(source)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engage.")
        for alias in node.names
    }
    (fn,) = [n for n in ast.walk(source) if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == handler]
    bodies = {
        importlib.import_module(protos[n.func.value.value.id])
        .DESCRIPTOR.message_types_by_name[n.func.value.attr]
        .full_name
        for n in ast.walk(fn)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in ("FromString", "ParseFromString")
        and isinstance(n.func.value, ast.Attribute)
        and isinstance(n.func.value.value, ast.Name)
        and n.func.value.value.id in protos
    }
    assert len(bodies) == 1, f"{module}.{handler}: expected one parsed protobuf message, got {bodies}"
    return Consumed(settings["crm_stream"].default, [settings["crm_subjects"].default], bodies.pop())


def required_by_consumer() -> set[str]:
    """The headers without which a message is not a CloudEvent (it is dead-lettered)."""
    with pytest.raises(ValueError) as error:
        CloudEvent.from_message({}, b"")
    return set(re.findall(r"ce-[a-z]+", str(error.value)))


def nats_match(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


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


def server_of(doc: dict[str, Any], channel: dict[str, Any]) -> str:
    """The one server a channel is on (every channel names exactly one)."""
    refs = [s["$ref"] for s in channel.get("servers", [])]
    assert len(refs) == 1 and refs[0].startswith("#/servers/"), f"{channel['address']}: name exactly one server"
    resolve(doc, channel["servers"][0])
    return str(refs[0].removeprefix("#/servers/"))


def channels_on(doc: dict[str, Any], server: str) -> list[dict[str, Any]]:
    return [c for c in doc["channels"].values() if server_of(doc, c) == server]


def channel_messages(doc: dict[str, Any], server: str) -> list[tuple[str, dict[str, Any]]]:
    """(channel address, resolved message) for every message of every channel on `server`."""
    return [
        (channel["address"], resolve(doc, message))
        for channel in channels_on(doc, server)
        for message in channel["messages"].values()
    ]


def concrete(address: str, channel: dict[str, Any]) -> str:
    """A subject the address stands for: each `{parameter}` replaced by a sample token."""
    for name in channel.get("parameters", {}):
        assert "{" + name + "}" in address, f"{address}: parameter {name} is not in the address"
        address = address.replace("{" + name + "}", "sample")
    assert "{" not in address, f"{address}: undeclared parameter"
    return address


# ---- tests ------------------------------------------------------------------------


def test_document_is_asyncapi_3_yaml(doc: dict[str, Any]) -> None:
    assert str(doc["asyncapi"]).startswith("3.0.")
    assert doc["defaultContentType"] == "application/protobuf"
    assert set(doc["servers"]) == {ENGAGE_SERVER, CRM_SERVER}
    assert {s["protocol"] for s in doc["servers"].values()} == {"nats"}
    expected_action = {ENGAGE_SERVER: "receive", CRM_SERVER: "send"}
    by_channel: dict[str, list[str]] = {}
    for op_id, op in doc["operations"].items():
        channel = resolve(doc, op["channel"])
        assert op["action"] == expected_action[server_of(doc, channel)], (
            f"{op_id}: Engage's events are received by integrators, CRM events are sent by them"
        )
        by_channel.setdefault(channel["address"], []).append(op_id)
        for message in op["messages"]:
            assert message["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), (
                f"{op_id}: its messages must be those of its channel"
            )
            resolve(doc, message)
    addresses = [c["address"] for c in doc["channels"].values()]
    assert len(addresses) == len(set(addresses)), "one channel per subject"
    assert {a: len(by_channel.get(a, [])) for a in addresses} == dict.fromkeys(addresses, 1), (
        "every channel has exactly one operation"
    )


def test_servers_describe_the_streams_the_code_creates(doc: dict[str, Any]) -> None:
    engage = doc["servers"][ENGAGE_SERVER]["x-jetstream"]
    assert engage["stream"] == ServiceSettings.model_fields["nats_stream"].default
    crm = doc["servers"][CRM_SERVER]["x-jetstream"]
    consumed = crm_consumer()
    assert crm["stream"] == consumed.stream
    assert crm["subjects"] == consumed.subjects
    for jetstream in (engage, crm):
        assert jetstream["duplicate_window_seconds"] == DUPLICATE_WINDOW_SECONDS
        assert jetstream["deduplication_header"] in sample_headers(Service("roles"))


def test_channels_are_exactly_the_emitted_subjects(doc: dict[str, Any], emitted: dict[str, Builder]) -> None:
    documented = {c["address"] for c in channels_on(doc, ENGAGE_SERVER)}
    assert documented == set(emitted), (
        f"undocumented subjects: {sorted(set(emitted) - documented)}; "
        f"documented but never emitted: {sorted(documented - set(emitted))}"
    )
    for name in SERVICES:
        assert any(b.service.name == name for b in emitted.values()), f"no events found for {name}"


def test_crm_channel_is_what_the_consumer_reads(doc: dict[str, Any]) -> None:
    consumed = crm_consumer()
    channels = channels_on(doc, CRM_SERVER)
    assert channels, "the CRM behaviour events are not documented"
    for channel in channels:
        subject = concrete(channel["address"], channel)
        assert any(nats_match(f, subject) for f in consumed.subjects), (
            f"{channel['address']}: the consumer reads only {consumed.subjects}"
        )
        assert not any(nats_match(f, subject) for f in doc["servers"][ENGAGE_SERVER]["x-jetstream"]["subjects"])
    for address, message in channel_messages(doc, CRM_SERVER):
        full_name = resolve(doc, message["payload"])["x-protobuf-message"]
        assert full_name == consumed.body, f"{address}: the consumer parses {consumed.body}, not {full_name}"


def test_payloads_are_the_protobuf_messages_sent(doc: dict[str, Any], emitted: dict[str, Builder]) -> None:
    for address, message in channel_messages(doc, ENGAGE_SERVER):
        assert message["contentType"] == "application/protobuf", address
        full_name = resolve(doc, message["payload"])["x-protobuf-message"]
        package, _, short = full_name.rpartition(".")
        service = emitted[address].service
        available = service.events_pb2.DESCRIPTOR.message_types_by_name
        assert package == service.package and short in available, f"{address}: {full_name} is not in events_pb2"
        assert short == emitted[address].body, f"{address}: the code sends {emitted[address].body}, not {short}"
        headers, _ = merged(doc, message["headers"])
        assert headers["ce-dataschema"].get("const") == f"proto:{full_name}", address
        assert address in headers["ce-type"].get("enum", []), f"{address}: missing from its message's ce-type enum"
        assert headers["ce-source"].get("const") == service.outgoing.SOURCE, f"{address}: ce-source"


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
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_schema(doc, resolve(doc, schema[key]), pool, f"{where}[]")


def test_payload_schemas_follow_the_proto(doc: dict[str, Any]) -> None:
    for name in SERVICES:
        Service(name).events_pb2  # noqa: B018 - loads the .proto files into the default pool
    pool = descriptor_pool.Default()
    for server in (ENGAGE_SERVER, CRM_SERVER):
        for address, message in channel_messages(doc, server):
            _check_schema(doc, resolve(doc, message["payload"]), pool, address)


def test_every_header_the_code_sets_is_documented(doc: dict[str, Any], emitted: dict[str, Builder]) -> None:
    for address, message in channel_messages(doc, ENGAGE_SERVER):
        sent = set(sample_headers(emitted[address].service))
        assert "Nats-Msg-Id" in sent
        documented, required = merged(doc, message["headers"])
        assert sent <= set(documented), f"{address}: undocumented headers {sorted(sent - set(documented))}"
        assert sent <= required, f"{address}: headers always sent but not required: {sorted(sent - required)}"
        stale = {h for h in documented if h.startswith("ce-")} - sent
        assert not stale, f"{address}: documented ce-* headers the code never sets: {sorted(stale)}"
        for header in sent:
            assert documented[header].get("description"), f"{address}: header {header} has no description"


def test_sample_event_matches_header_constants(doc: dict[str, Any]) -> None:
    """The fixed values the document promises are the ones the code sends."""
    schema, _ = merged(doc, doc["components"]["schemas"]["CloudEventHeaders"])
    for name in SERVICES:
        headers = sample_headers(Service(name))
        for header in ("ce-specversion", "ce-datacontenttype"):
            assert schema[header]["const"] == headers[header], header
        assert headers["Nats-Msg-Id"] == headers["ce-id"]


def test_crm_headers_are_what_the_consumer_needs(doc: dict[str, Any]) -> None:
    attributes = set(sample_headers(Service("roles")))  # every header a CloudEvent can have
    needed = required_by_consumer()
    assert "ce-id" in needed
    for address, message in channel_messages(doc, CRM_SERVER):
        assert message["contentType"] == "application/protobuf", address
        documented, required = merged(doc, message["headers"])
        assert needed <= required, f"{address}: the consumer dead-letters events without {sorted(needed - required)}"
        assert "ce-datacontenttype" in required and documented["ce-datacontenttype"]["const"] == "application/protobuf"
        assert set(documented) <= attributes, f"{address}: headers the consumer does not know of"
        assert documented["ce-id"]["pattern"] == ID_PATTERN.pattern, f"{address}: ce-id must match the id pattern"
        full_name = resolve(doc, message["payload"])["x-protobuf-message"]
        assert documented["ce-dataschema"].get("const") == f"proto:{full_name}", address
        for header in documented:
            assert documented[header].get("description"), f"{address}: header {header} has no description"
