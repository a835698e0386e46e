"""The Kubernetes manifests as the tests see them, and the policies they must meet.

`render(overlay)` runs `kubectl kustomize k8s/overlays/<overlay>`; `load(path)`
reads a plain manifest file (k8s/tools). Each `check_*` function takes the
objects and returns the violations it finds (empty: the policy holds), so a
test can assert both that the real manifests pass and that a broken copy
fails.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.platform.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
TOOLS = sorted((K8S / "tools").glob("*.yaml"))
KUBERNETES_VERSION = "1.32.0"

Doc = dict[str, Any]
Docs = list[Doc]

# Custom resources: kubernetes-validate ships only the built-in schemas, so
# these kinds cannot be validated by it; test_schemas checks their references.
CUSTOM_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("barmancloud.cnpg.io/v1", "ObjectStore"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}

# The pods CloudNativePG creates for a Cluster, as far as the policies care:
# its labels come from the Cluster, its ports are fixed.
CNPG_PORTS = {"postgresql": 5432, "status": 8000, "metrics": 9187}

# Containers that need no probes: sidecars whose failure the main container's
# probes do not depend on. Each entry is (owner, container).
PROBELESS_SIDECARS = {("StatefulSet/nats", "reloader")}

SERVICE_COMPONENT = "grpc-service"
GATEWAY_COMPONENT = "gateway"
GATEWAY_HEALTH_PATH = "/healthz"
DEFAULT_DRAIN = float(ServiceSettings.model_fields["drain_seconds"].default)
DEFAULT_GRACE = float(ServiceSettings.model_fields["grace_seconds"].default)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = "kubectl is not installed (CI installs it: see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def render(overlay: str) -> Docs:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/overlays/{overlay} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


_RENDERED: dict[str, Docs] = {}


def rendered(overlay: str) -> Docs:
    """The overlay rendered once per session; each call returns a fresh deep
    copy, so a test may break it."""
    if overlay not in _RENDERED:
        _RENDERED[overlay] = render(overlay)
    return copy.deepcopy(_RENDERED[overlay])


def load(path: Path) -> Docs:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def ident(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def of_kind(docs: Docs, kind: str) -> Docs:
    return [d for d in docs if d.get("kind") == kind]


def find(docs: Docs, kind: str, name: str) -> Doc | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def namespace_of(doc: Doc) -> str:
    return str(doc.get("metadata", {}).get("namespace", ""))


# ---------------------------------------------------------------- pods


@dataclass
class Pod:
    """A pod template (or pod) and where it comes from."""

    owner: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    workload: Doc = field(repr=False)

    @property
    def component(self) -> str:
        return self.labels.get("app.kubernetes.io/component", "")

    @property
    def is_service(self) -> bool:
        return self.component == SERVICE_COMPONENT

    @property
    def is_gateway(self) -> bool:
        return self.component == GATEWAY_COMPONENT


def _template(doc: Doc) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return dict(doc["spec"]["template"])
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"])
    return None


def pods(docs: Docs) -> list[Pod]:
    out = []
    for doc in docs:
        template = _template(doc)
        if template is None:
            continue
        meta = template.get("metadata", {})
        out.append(
            Pod(
                ident(doc),
                namespace_of(doc),
                dict(meta.get("labels", {})),
                dict(meta.get("annotations", {})),
                template["spec"],
                doc,
            )
        )
    return out


def containers(spec: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])
        yield from spec.get("ephemeralContainers", [])


def env_of(container: dict[str, Any], docs: Docs, namespace: str) -> dict[str, str | None]:
    """The container's environment: literal values, ConfigMap values resolved
    from the rendered objects, None for values from Secrets or fields."""
    values: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            cm = next(
                (
                    c
                    for c in of_kind(docs, "ConfigMap")
                    if c["metadata"]["name"] == ref["name"] and namespace_of(c) == namespace
                ),
                None,
            )
            assert cm is not None or ref.get("optional"), f"ConfigMap {ref['name']} is not rendered"
            prefix = source.get("prefix", "")
            values.update({prefix + k: str(v) for k, v in (cm or {}).get("data", {}).items()})
    for item in container.get("env", []):
        values[item["name"]] = str(item["value"]) if "value" in item else None
    return values


def container_ports(spec: dict[str, Any]) -> dict[str, int]:
    return {
        p.get("name", str(p["containerPort"])): int(p["containerPort"])
        for c in containers(spec, init=False)
        for p in c.get("ports", [])
    }


# ---------------------------------------------------------------- label selectors


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector; an empty one selects everything."""
    selector = selector or {}
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


@dataclass
class Target:
    """Something NetworkPolicies select: a pod template or CloudNativePG's pods."""

    owner: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int]


def policy_targets(docs: Docs) -> list[Target]:
    out = [Target(p.owner, p.namespace, p.labels, container_ports(p.spec)) for p in pods(docs)]
    for cluster in of_kind(docs, "Cluster"):
        labels = {"cnpg.io/cluster": cluster["metadata"]["name"]}
        labels.update(cluster["spec"].get("inheritedMetadata", {}).get("labels", {}))
        out.append(Target(ident(cluster), namespace_of(cluster), labels, dict(CNPG_PORTS)))
    return out


# ---------------------------------------------------------------- quantities

_UNITS = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: object) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match and match.group(2) in _UNITS, f"not a quantity: {value!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


# ---------------------------------------------------------------- policies

Check = Callable[[Docs], list[str]]


def check_restricted(docs: Docs) -> list[str]:
    """The restricted Pod Security Standard, on every pod and container."""
    bad = []
    for ns in of_kind(docs, "Namespace"):
        if ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            bad.append(f"{ident(ns)}: pod-security.kubernetes.io/enforce is not restricted")
    for pod in pods(docs):
        spec = pod.spec
        psc = spec.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                bad.append(f"{pod.owner}: {flag}")
        for volume in spec.get("volumes", []):
            if "hostPath" in volume:
                bad.append(f"{pod.owner}: hostPath volume {volume['name']}")
        for c in containers(spec):
            where = f"{pod.owner}/{c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                bad.append(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                bad.append(f"{where}: runs as uid 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                bad.append(f"{where}: privileged")
            caps = sc.get("capabilities", {})
            if "ALL" not in caps.get("drop", []):
                bad.append(f"{where}: capabilities do not drop ALL")
            if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                bad.append(f"{where}: adds capabilities {caps['add']}")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
            if seccomp not in {"RuntimeDefault", "Localhost"}:
                bad.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
            if sc.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{where}: readOnlyRootFilesystem is not true")
    return bad


def _gateway_probe_problems(where: str, ports: dict[str, int], probes: dict[str, dict[str, Any]]) -> list[str]:
    bad = []
    for name, probe in probes.items():
        http = probe.get("httpGet")
        if not http:
            bad.append(f"{where}: {name} probe is not an HTTP GET of {GATEWAY_HEALTH_PATH}")
            continue
        if http.get("path") != GATEWAY_HEALTH_PATH:
            bad.append(f"{where}: {name} probe path {http.get('path')!r} is not {GATEWAY_HEALTH_PATH}")
        if http.get("port") not in {"http", ports.get("http")}:
            bad.append(f"{where}: {name} probe port {http.get('port')!r} is not the http port")
    return bad


def check_probes(docs: Docs) -> list[str]:
    """Engage gRPC services: gRPC readiness ("readiness"), liveness (""),
    startup, all on the port named grpc; the gateway: HTTP readiness, liveness
    and startup on GET /healthz at the port named http; every other container:
    readiness and liveness."""
    bad = []
    for pod in pods(docs):
        ports = container_ports(pod.spec)
        for c in containers(pod.spec, init=False):
            where = f"{pod.owner}/{c['name']}"
            if (pod.owner, c["name"]) in PROBELESS_SIDECARS:
                continue
            ready: dict[str, Any] = c.get("readinessProbe") or {}
            live: dict[str, Any] = c.get("livenessProbe") or {}
            startup: dict[str, Any] = c.get("startupProbe") or {}
            if pod.is_gateway:
                bad += _gateway_probe_problems(where, ports, {"readiness": ready, "liveness": live, "startup": startup})
                continue
            if not pod.is_service:
                if not ready or not live:
                    bad.append(f"{where}: missing readiness or liveness probe")
                continue
            if not ready.get("grpc") or ready["grpc"].get("service") != "readiness":
                bad.append(f"{where}: readinessProbe is not gRPC health service 'readiness'")
            if not live.get("grpc") or live["grpc"].get("service", "") != "":
                bad.append(f"{where}: livenessProbe is not gRPC health service ''")
            if not startup:
                bad.append(f"{where}: no startupProbe")
            for name, probe in (("readiness", ready), ("liveness", live), ("startup", startup)):
                grpc = probe.get("grpc")
                if grpc and grpc.get("port") != ports.get("grpc"):
                    bad.append(f"{where}: {name} probe port {grpc.get('port')} is not the grpc port")
    return bad


def _resource_problems(where: str, resources: dict[str, Any] | None) -> list[str]:
    resources = resources or {}
    bad = []
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in resources.get(part, {}):
                bad.append(f"{where}: no {part}.{res}")
    for res in ("cpu", "memory"):
        req, lim = resources.get("requests", {}).get(res), resources.get("limits", {}).get(res)
        if req is not None and lim is not None and quantity(req) > quantity(lim):
            bad.append(f"{where}: {res} request {req} above limit {lim}")
    return bad


def check_resources(docs: Docs) -> list[str]:
    """Requests and limits (cpu and memory) on every container, also those
    CloudNativePG runs for the Cluster and the backup sidecar."""
    bad = []
    for pod in pods(docs):
        for c in containers(pod.spec):
            bad += _resource_problems(f"{pod.owner}/{c['name']}", c.get("resources"))
    for cluster in of_kind(docs, "Cluster"):
        bad += _resource_problems(ident(cluster), cluster["spec"].get("resources"))
    for store in of_kind(docs, "ObjectStore"):
        bad += _resource_problems(ident(store), store["spec"].get("instanceSidecarConfiguration", {}).get("resources"))
    return bad


def check_images(docs: Docs) -> list[str]:
    """Every image names a tag (not latest) or a digest."""
    images = [(f"{p.owner}/{c['name']}", c.get("image", "")) for p in pods(docs) for c in containers(p.spec)]
    images += [(ident(c), c["spec"].get("imageName", "")) for c in of_kind(docs, "Cluster")]
    bad = []
    for where, image in images:
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if not tag or tag == "latest":
            bad.append(f"{where}: image {image!r} has no pinned tag")
    return bad


def check_service_accounts(docs: Docs) -> list[str]:
    """No Kubernetes API token in any pod."""
    bad = [
        f"{ident(sa)}: automountServiceAccountToken is not false"
        for sa in of_kind(docs, "ServiceAccount")
        if sa.get("automountServiceAccountToken") is not False
    ]
    for pod in pods(docs):
        if pod.spec.get("automountServiceAccountToken") is not False:
            bad.append(f"{pod.owner}: automountServiceAccountToken is not false")
        sa = pod.spec.get("serviceAccountName")
        if not sa or sa == "default":
            bad.append(f"{pod.owner}: runs as the default ServiceAccount")
    return bad


def check_termination_grace(docs: Docs) -> list[str]:
    """An Engage pod's terminationGracePeriodSeconds exceeds its drain + grace
    (ENGAGE_DRAIN_SECONDS + ENGAGE_GRACE_SECONDS, or the code's defaults)."""
    bad = []
    for pod in pods(docs):
        if not pod.is_service:
            continue
        period = float(pod.spec.get("terminationGracePeriodSeconds", 30))
        for c in containers(pod.spec, init=False):
            env = env_of(c, docs, pod.namespace)
            needed = float(env.get("ENGAGE_DRAIN_SECONDS") or DEFAULT_DRAIN) + float(
                env.get("ENGAGE_GRACE_SECONDS") or DEFAULT_GRACE
            )
            if period <= needed:
                bad.append(
                    f"{pod.owner}/{c['name']}: terminationGracePeriodSeconds {period:g} <= drain + grace {needed:g}"
                )
    return bad


def _policy_ports(rule: dict[str, Any]) -> list[int | str]:
    return [p["port"] for p in rule.get("ports", []) if "port" in p]


def check_network_policies(docs: Docs) -> list[str]:
    """Deny by default in every namespace with pods; every pod has a policy of
    its own (beyond the namespace-wide ones); every port a policy opens exists
    on the pods it selects."""
    bad = []
    policies = of_kind(docs, "NetworkPolicy")
    targets = policy_targets(docs)
    for ns in sorted({t.namespace for t in targets}):
        in_ns = [p for p in policies if namespace_of(p) == ns]
        if not any(
            not p["spec"].get("podSelector")
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
            for p in in_ns
        ):
            bad.append(f"namespace {ns!r}: no default-deny NetworkPolicy (Ingress and Egress)")
        if not any(
            any(53 in _policy_ports(rule) for rule in p["spec"].get("egress", [])) and not p["spec"].get("podSelector")
            for p in in_ns
        ):
            bad.append(f"namespace {ns!r}: no DNS egress for every pod")
    for target in targets:
        own = [
            p
            for p in policies
            if namespace_of(p) == target.namespace
            and p["spec"].get("podSelector")
            and selects(p["spec"]["podSelector"], target.labels)
        ]
        if not own:
            bad.append(f"{target.owner}: selected by no NetworkPolicy of its own")
        for policy in own:
            for rule in policy["spec"].get("ingress", []):
                for port in _policy_ports(rule):
                    if port not in target.ports and port not in target.ports.values():
                        bad.append(f"{ident(policy)} opens port {port!r} that {target.owner} does not have")
    return bad


# ---------------------------------------------------------------- flows


@dataclass(frozen=True)
class Source:
    """Where a connection comes from: a pod with labels in a namespace with labels."""

    what: str
    labels: dict[str, str]
    namespace_labels: dict[str, str]
    namespace: str = ""  # "" : outside the overlay's namespace


def _ns_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_admits(peer: dict[str, Any], labels: dict[str, str], ns_labels: dict[str, str], same_ns: bool) -> bool:
    if "ipBlock" in peer:
        return False  # pods are judged by labels; address blocks are for what lies outside the cluster
    if "namespaceSelector" not in peer:
        return same_ns and selects(peer.get("podSelector"), labels)
    return selects(peer["namespaceSelector"], ns_labels) and (
        "podSelector" not in peer or selects(peer["podSelector"], labels)
    )


def _rule_ports_admit(rule: dict[str, Any], port: str, number: int | None) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") in {port, number} for p in ports)


def _direction_allows(
    policies: Docs,
    namespace: str,
    labels: dict[str, str],
    direction: str,
    peer_labels: dict[str, str],
    peer_ns_labels: dict[str, str],
    same_ns: bool,
    port: str,
    number: int | None,
) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = [
        p
        for p in policies
        if namespace_of(p) == namespace
        and selects(p["spec"].get("podSelector"), labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not applying:
        return True
    for policy in applying:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if not _rule_ports_admit(rule, port, number):
                continue
            if not peers or any(_peer_admits(peer, peer_labels, peer_ns_labels, same_ns) for peer in peers):
                return True
    return False


def allows(docs: Docs, source: Source, target: Target, port: str) -> bool:
    """Whether the NetworkPolicies let `source` open a connection to `target`'s
    port (a name of the target's ports or a number)."""
    policies = of_kind(docs, "NetworkPolicy")
    number = target.ports.get(port, int(port) if port.isdigit() else None)
    name = next((n for n, p in target.ports.items() if p == number), port)
    same_ns = source.namespace == target.namespace
    ingress = _direction_allows(
        policies,
        target.namespace,
        target.labels,
        "Ingress",
        source.labels,
        source.namespace_labels,
        same_ns,
        name,
        number,
    )
    if not source.namespace:
        return ingress  # egress from outside is not ours to restrict
    egress = _direction_allows(
        policies,
        source.namespace,
        source.labels,
        "Egress",
        target.labels,
        _ns_labels(target.namespace),
        same_ns,
        name,
        number,
    )
    return ingress and egress


# Namespaces outside Engage, as k8s/README.md tells the operator to label them.
GRPC_EDGE = {"engage.dev/grpc-ingress": "true"}
HTTP_EDGE = {"engage.dev/http-ingress": "true"}
CRM_NAMESPACE = {"engage.dev/crm": "true"}
CRM_PUBLISHER = {"engage.dev/crm-publisher": "true"}


def check_flows(docs: Docs) -> list[str]:
    """The flows Engage needs are open, and the neighbouring ones are closed:
    gateway -> every gRPC service; the gRPC edge -> every gRPC service; the
    HTTP edge -> the gateway; every service -> PostgreSQL and NATS; the
    gateway -> NATS (not PostgreSQL); CRM publishers (a labelled pod in a
    labelled namespace) -> NATS 4222, and nothing else of theirs."""
    bad: list[str] = []
    targets = policy_targets(docs)
    # By what they are (a port named grpc / http), not by the labels the policies select on.
    services = [t for t in targets if "grpc" in t.ports]
    gateways = [t for t in targets if "http" in t.ports]
    nats = [t for t in targets if t.labels.get("app.kubernetes.io/component") == "nats"]
    databases = [t for t in targets if t.labels.get("app.kubernetes.io/component") == "database"]
    if not services or not gateways or not nats or not databases:
        return [f"missing workloads: services {len(services)}, gateways {len(gateways)}, nats {len(nats)}"]

    def source_of(target: Target) -> Source:
        return Source(target.owner, target.labels, _ns_labels(target.namespace), target.namespace)

    outside = [
        Source("the gRPC edge", {}, GRPC_EDGE),
        Source("the HTTP edge", {}, HTTP_EDGE),
        Source("a CRM publisher", CRM_PUBLISHER, CRM_NAMESPACE),
        Source("a CRM pod without the publisher label", {}, CRM_NAMESPACE),
        Source("a publisher-labelled pod in an unlabelled namespace", CRM_PUBLISHER, {}),
        Source("another namespace", {}, {}),
    ]
    want: list[tuple[Source, Target, str]] = []
    for service in services:
        want += [(source_of(g), service, "grpc") for g in gateways]
        want += [(outside[0], service, "grpc")]
        want += [(source_of(service), d, "5432") for d in databases]
        want += [(source_of(service), n, "4222") for n in nats]
    for gateway in gateways:
        want += [(outside[1], gateway, "http")]
        want += [(source_of(gateway), n, "4222") for n in nats]
    want += [(outside[2], n, "4222") for n in nats]
    for source, target, port in want:
        if not allows(docs, source, target, port):
            bad.append(f"{source.what} cannot reach {target.owner} on {port}")

    unwanted: list[tuple[Source, Target, str]] = []
    for n in nats:
        unwanted += [(s, n, "4222") for s in (outside[0], outside[1], outside[3], outside[4], outside[5])]
        unwanted += [(outside[2], n, "6222")]
    for service in services:
        unwanted += [(s, service, "grpc") for s in (outside[1], outside[2], outside[5])]
    for gateway in gateways:
        unwanted += [(s, gateway, "http") for s in (outside[0], outside[2], outside[5])]
        unwanted += [(source_of(gateway), d, "5432") for d in databases]
    for d in databases:
        unwanted += [(s, d, "5432") for s in outside]
    for source, target, port in unwanted:
        if allows(docs, source, target, port):
            bad.append(f"{source.what} can reach {target.owner} on {port} (must not)")
    return bad


def check_disruption(docs: Docs) -> list[str]:
    """Prod: every Deployment and StatefulSet has a PodDisruptionBudget, spreads
    over zones, and runs three replicas (a gRPC service: an HPA with min 3 that
    owns the count)."""
    bad = []
    pdbs = of_kind(docs, "PodDisruptionBudget")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    for pod in pods(docs):
        kind = pod.workload["kind"]
        if kind not in {"Deployment", "StatefulSet"}:
            continue
        if not any(namespace_of(p) == pod.namespace and selects(p["spec"].get("selector"), pod.labels) for p in pdbs):
            bad.append(f"{pod.owner}: no PodDisruptionBudget")
        anti = pod.spec.get("affinity", {}).get("podAntiAffinity", {})
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
            w["podAffinityTerm"] for w in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        ]
        zonal = any(
            t.get("topologyKey") == "topology.kubernetes.io/zone"
            for t in [*pod.spec.get("topologySpreadConstraints", []), *terms]
        )
        if not zonal:
            bad.append(f"{pod.owner}: not spread across zones")
        name = pod.workload["metadata"]["name"]
        hpa = next((h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == name), None)
        if kind == "Deployment":
            if hpa is None or hpa["spec"].get("minReplicas", 1) < 3:
                bad.append(f"{pod.owner}: no HorizontalPodAutoscaler with minReplicas >= 3")
            if "replicas" in pod.workload["spec"]:
                bad.append(f"{pod.owner}: sets replicas although an HPA owns the count")
        elif pod.workload["spec"].get("replicas", 1) < 3:
            bad.append(f"{pod.owner}: fewer than 3 replicas")
    for cluster in of_kind(docs, "Cluster"):
        spec = cluster["spec"]
        if spec.get("instances", 1) < 3:
            bad.append(f"{ident(cluster)}: fewer than 3 instances")
        affinity = spec.get("affinity", {})
        if (
            affinity.get("topologyKey") != "topology.kubernetes.io/zone"
            or affinity.get("enablePodAntiAffinity") is False
        ):
            bad.append(f"{ident(cluster)}: instances not spread across zones")
    return bad


# ---------------------------------------------------------------- NATS


@dataclass
class NatsServer:
    """A NATS StatefulSet with its configuration file."""

    statefulset: Doc
    config: str
    config_mount: str
    data_mounts: list[str]

    @property
    def replicas(self) -> int:
        return int(self.statefulset["spec"].get("replicas", 1))


def nats_servers(docs: Docs) -> list[NatsServer]:
    out = []
    for sts in of_kind(docs, "StatefulSet"):
        spec = sts["spec"]["template"]["spec"]
        for c in spec["containers"]:
            args = c.get("args", [])
            if "--config" not in args or "nats" not in c.get("image", ""):
                continue
            path = args[args.index("--config") + 1]
            mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
            volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
            cm = find(docs, "ConfigMap", volume["configMap"]["name"])
            assert cm is not None, f"{ident(sts)}: its config ConfigMap is not rendered"
            claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
            data = [m["mountPath"] for m in c["volumeMounts"] if m["name"] in claims]
            out.append(NatsServer(sts, cm["data"][Path(path).name], mount["mountPath"], data))
    return out


def _strip_comments(text: str) -> str:
    return "\n".join(re.sub(r"\s*#.*$", "", line) for line in text.splitlines())


def nats_block(config: str, name: str) -> str | None:
    """The body of a top-level `name { ... }` block of a NATS config."""
    text = _strip_comments(config)
    match = re.search(rf"(?m)^{name}\s*[:=]?\s*\{{", text)
    if not match:
        return None
    depth, start = 1, match.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def nats_setting(block: str, key: str) -> str | None:
    match = re.search(rf"(?m)^\s*{key}\s*[:=]\s*(\S+)", block)
    return match.group(1).strip("\"'") if match else None


def check_nats(docs: Docs) -> list[str]:
    """JetStream flushes every write (sync_interval: always) into a store on its
    own volume, the config never on it; a cluster routes to each server; the
    services' stream replicas fit the servers."""
    bad = []
    servers = nats_servers(docs)
    if not servers:
        return ["no NATS StatefulSet with a --config file"]
    for server in servers:
        where = ident(server.statefulset)
        js = nats_block(server.config, "jetstream")
        if js is None:
            bad.append(f"{where}: JetStream is not enabled")
            continue
        if nats_setting(js, "sync_interval") != "always":
            bad.append(f"{where}: jetstream sync_interval is not always")
        store = nats_setting(js, "store_dir") or ""
        if not any(store == m or store.startswith(m.rstrip("/") + "/") for m in server.data_mounts):
            bad.append(f"{where}: store_dir {store!r} is not on a persistent volume")
        for data in server.data_mounts:
            if server.config_mount.startswith(data.rstrip("/") + "/") or data.startswith(server.config_mount):
                bad.append(f"{where}: the config at {server.config_mount} shares the data volume {data}")
        cluster = nats_block(server.config, "cluster")
        if server.replicas > 1:
            routes = re.findall(r"nats://([a-z0-9.-]+):\d+", cluster or "")
            name = server.statefulset["metadata"]["name"]
            headless = server.statefulset["spec"]["serviceName"]
            expected = [f"{name}-{i}.{headless}" for i in range(server.replicas)]
            if routes != expected:
                bad.append(f"{where}: {server.replicas} replicas but cluster routes {routes}")
        elif cluster is not None:
            bad.append(f"{where}: one replica with a cluster block")
    most = max(s.replicas for s in servers)
    for pod in pods(docs):
        if not pod.is_service:
            continue
        for c in containers(pod.spec, init=False):
            replicas = int(env_of(c, docs, pod.namespace).get("ENGAGE_NATS_STREAM_REPLICAS") or 1)
            if replicas > most:
                bad.append(f"{pod.owner}/{c['name']}: stream replicas {replicas} > NATS servers {most}")
            if most >= 3 and replicas < 3:
                bad.append(f"{pod.owner}/{c['name']}: stream replicas {replicas} on a {most}-node cluster")
    return bad


POLICIES: dict[str, Check] = {
    "restricted": check_restricted,
    "probes": check_probes,
    "resources": check_resources,
    "images": check_images,
    "service-accounts": check_service_accounts,
    "termination-grace": check_termination_grace,
    "network-policies": check_network_policies,
    "flows": check_flows,
    "nats": check_nats,
}
