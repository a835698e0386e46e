"""Policies over the rendered YAML: the restricted Pod Security Standard,
probes (gRPC for the services, HTTP for the gateway), requests and limits,
pinned images, no API tokens, termination grace longer than the drain,
deny-by-default NetworkPolicies covering every pod, the flows they must allow
and refuse (gateway, edges, CRM publishers, PostgreSQL, NATS), the NATS
durability settings, and in prod disruption budgets, zone spreading and
three replicas.

Every policy is shown to hold on the real manifests and to fail on a copy
broken the way a careless edit would break it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.manifests import (
    OVERLAYS,
    POLICIES,
    TOOLS,
    Doc,
    Docs,
    check_disruption,
    check_images,
    check_resources,
    check_restricted,
    check_service_accounts,
    find,
    load,
    of_kind,
    rendered,
)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_policy_holds(docs: Docs, policy: str) -> None:
    assert POLICIES[policy](docs) == []


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_tools_meet_the_pod_policies(path: Path) -> None:
    docs = load(path)
    for check in (check_restricted, check_resources, check_images, check_service_accounts):
        assert check(docs) == [], check.__name__


def test_prod_has_budgets_zone_spreading_and_three_replicas() -> None:
    assert check_disruption(rendered("prod")) == []


# ---------------------------------------------------------------- breakages


def obj(docs: Docs, kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert found is not None, f"{kind}/{name}"
    return found


def pod_spec(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = obj(docs, kind, name)["spec"]["template"]["spec"]
    return spec


def container(docs: Docs, kind: str, name: str, container_name: str) -> dict[str, Any]:
    spec = pod_spec(docs, kind, name)
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == container_name)


def engage_config(docs: Docs) -> dict[str, str]:
    return dict(
        next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("engage-config"))["data"]
    )


def set_engage_config(docs: Docs, key: str, value: str) -> None:
    next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("engage-config"))["data"][key] = (
        value
    )


def nats_conf(docs: Docs, edit: Callable[[str], str]) -> None:
    cm = obj(docs, "ConfigMap", "nats-config")
    cm["data"]["nats.conf"] = edit(cm["data"]["nats.conf"])


def remove(docs: Docs, kind: str, name: str) -> None:
    docs.remove(obj(docs, kind, name))


def pod_labels(docs: Docs, deployment: str) -> dict[str, str]:
    labels: dict[str, str] = obj(docs, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
    return labels


def unguard_gateway(docs: Docs) -> None:
    """No gateway policy, and no label that another policy selects it by."""
    remove(docs, "NetworkPolicy", "gateway")
    pod_labels(docs, "gateway").pop("engage.dev/nats-client")


def _crm_rule_index(docs: Docs) -> int:
    rules = obj(docs, "NetworkPolicy", "nats")["spec"]["ingress"]
    return next(i for i, r in enumerate(rules) if any("engage.dev/crm" in str(p) for p in r.get("from", [])))


def crm_peer(docs: Docs) -> dict[str, Any]:
    rule = obj(docs, "NetworkPolicy", "nats")["spec"]["ingress"][_crm_rule_index(docs)]
    peer: dict[str, Any] = rule["from"][0]
    return peer


def drop_crm_rule(docs: Docs) -> None:
    obj(docs, "NetworkPolicy", "nats")["spec"]["ingress"].pop(_crm_rule_index(docs))


Breakage = tuple[str, str, str, Callable[[Docs], None]]

BREAKAGES: list[Breakage] = [
    # restricted
    (
        "restricted",
        "prod",
        "runAsNonRoot",
        lambda d: pod_spec(d, "Deployment", "roles")["securityContext"].pop("runAsNonRoot"),
    ),
    (
        "restricted",
        "dev",
        "allowPrivilegeEscalation",
        lambda d: container(d, "Deployment", "roles", "migrate")["securityContext"].update(
            allowPrivilegeEscalation=True
        ),
    ),
    (
        "restricted",
        "prod",
        "drop ALL",
        lambda d: container(d, "StatefulSet", "nats", "reloader")["securityContext"]["capabilities"].update(drop=[]),
    ),
    (
        "restricted",
        "dev",
        "seccompProfile",
        lambda d: pod_spec(d, "StatefulSet", "postgres")["securityContext"].pop("seccompProfile"),
    ),
    (
        "restricted",
        "prod",
        "readOnlyRootFilesystem",
        lambda d: container(d, "Deployment", "roles", "roles")["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    (
        "restricted",
        "dev",
        "uid 0",
        lambda d: container(d, "StatefulSet", "nats", "nats")["securityContext"].update(runAsUser=0),
    ),
    (
        "restricted",
        "prod",
        "enforce",
        lambda d: of_kind(d, "Namespace")[0]["metadata"]["labels"].update(
            {"pod-security.kubernetes.io/enforce": "baseline"}
        ),
    ),
    # probes
    (
        "probes",
        "prod",
        "readinessProbe",
        lambda d: container(d, "Deployment", "roles", "roles")["readinessProbe"]["grpc"].update(service=""),
    ),
    (
        "probes",
        "dev",
        "livenessProbe",
        lambda d: container(d, "Deployment", "roles", "roles")["livenessProbe"]["grpc"].update(service="readiness"),
    ),
    ("probes", "dev", "startupProbe", lambda d: container(d, "Deployment", "roles", "roles").pop("startupProbe")),
    (
        "probes",
        "prod",
        "grpc port",
        lambda d: container(d, "Deployment", "roles", "roles")["startupProbe"]["grpc"].update(port=50052),
    ),
    (
        "probes",
        "dev",
        "readiness or liveness",
        lambda d: container(d, "StatefulSet", "nats", "nats").pop("readinessProbe"),
    ),
    (
        "probes",
        "prod",
        "not an HTTP GET",
        lambda d: container(d, "Deployment", "gateway", "gateway").update(readinessProbe={"tcpSocket": {"port": 8080}}),
    ),
    (
        "probes",
        "dev",
        "is not /healthz",
        lambda d: container(d, "Deployment", "gateway", "gateway")["livenessProbe"]["httpGet"].update(path="/"),
    ),
    (
        "probes",
        "prod",
        "not the http port",
        lambda d: container(d, "Deployment", "gateway", "gateway")["startupProbe"]["httpGet"].update(port=9000),
    ),
    (
        "probes",
        "dev",
        "Deployment/skills/skills: readinessProbe",
        lambda d: container(d, "Deployment", "skills", "skills")["readinessProbe"]["grpc"].update(service=""),
    ),
    (
        "probes",
        "prod",
        "Deployment/incentives/incentives: startup probe port",
        lambda d: container(d, "Deployment", "incentives", "incentives")["startupProbe"]["grpc"].update(port=50051),
    ),
    # resources
    (
        "resources",
        "dev",
        "limits.memory",
        lambda d: container(d, "Deployment", "roles", "migrate")["resources"]["limits"].pop("memory"),
    ),
    (
        "resources",
        "prod",
        "above limit",
        lambda d: container(d, "StatefulSet", "nats", "nats")["resources"]["requests"].update(cpu="3"),
    ),
    ("resources", "prod", "Cluster/engage-pg", lambda d: obj(d, "Cluster", "engage-pg")["spec"].pop("resources")),
    # images
    ("images", "dev", "latest", lambda d: container(d, "StatefulSet", "nats", "nats").update(image="nats:latest")),
    (
        "images",
        "prod",
        "no pinned tag",
        lambda d: container(d, "Deployment", "roles", "roles").update(image="registry.example.com:5000/engage"),
    ),
    (
        "images",
        "prod",
        "Cluster/engage-pg",
        lambda d: obj(d, "Cluster", "engage-pg")["spec"].update(imageName="ghcr.io/cloudnative-pg/postgresql"),
    ),
    (
        "restricted",
        "prod",
        "Deployment/gateway/gateway: readOnlyRootFilesystem",
        lambda d: container(d, "Deployment", "gateway", "gateway")["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    ),
    # service accounts
    (
        "service-accounts",
        "dev",
        "ServiceAccount/incentives",
        lambda d: obj(d, "ServiceAccount", "incentives").update(automountServiceAccountToken=True),
    ),
    (
        "service-accounts",
        "prod",
        "Deployment/roles",
        lambda d: pod_spec(d, "Deployment", "roles").update(automountServiceAccountToken=True),
    ),
    (
        "service-accounts",
        "dev",
        "ServiceAccount/nats",
        lambda d: obj(d, "ServiceAccount", "nats").pop("automountServiceAccountToken"),
    ),
    # termination grace
    (
        "termination-grace",
        "prod",
        "drain + grace",
        lambda d: pod_spec(d, "Deployment", "roles").update(terminationGracePeriodSeconds=15),
    ),
    ("termination-grace", "dev", "drain + grace", lambda d: set_engage_config(d, "ENGAGE_GRACE_SECONDS", "40")),
    # network policies
    ("network-policies", "prod", "default-deny", lambda d: remove(d, "NetworkPolicy", "default-deny-all")),
    ("network-policies", "dev", "DNS", lambda d: remove(d, "NetworkPolicy", "allow-dns-egress")),
    ("network-policies", "dev", "StatefulSet/nats", lambda d: remove(d, "NetworkPolicy", "nats")),
    ("network-policies", "dev", "StatefulSet/postgres", lambda d: remove(d, "NetworkPolicy", "postgres")),
    (
        "network-policies",
        "prod",
        "port 4333",
        lambda d: obj(d, "NetworkPolicy", "nats")["spec"]["ingress"][0]["ports"][0].update(port=4333),
    ),
    (
        "network-policies",
        "prod",
        "Deployment/gateway: selected by no NetworkPolicy",
        lambda d: unguard_gateway(d),
    ),
    # flows
    ("flows", "prod", "a CRM publisher cannot reach StatefulSet/nats on 4222", lambda d: drop_crm_rule(d)),
    (
        "flows",
        "dev",
        "a CRM pod without the publisher label can reach StatefulSet/nats",
        lambda d: crm_peer(d).pop("podSelector"),
    ),
    (
        "flows",
        "prod",
        "a publisher-labelled pod in an unlabelled namespace can reach",
        lambda d: crm_peer(d).update(namespaceSelector={}),
    ),
    (
        "flows",
        "dev",
        "Deployment/gateway cannot reach Deployment/incentives on grpc",
        lambda d: obj(d, "NetworkPolicy", "gateway")["spec"].pop("egress"),
    ),
    (
        "flows",
        "prod",
        "Deployment/gateway can reach Cluster/engage-pg on 5432 (must not)",
        lambda d: pod_labels(d, "gateway").update({"engage.dev/postgres-client": "true"}),
    ),
    (
        "flows",
        "dev",
        "the HTTP edge cannot reach Deployment/gateway on http",
        lambda d: obj(d, "NetworkPolicy", "gateway")["spec"]["ingress"][0]["from"][0].update(
            namespaceSelector={"matchLabels": {"engage.dev/http": "true"}}
        ),
    ),
    (
        "flows",
        "prod",
        "the gRPC edge cannot reach Deployment/skills on grpc",
        lambda d: pod_labels(d, "skills").update({"app.kubernetes.io/component": "skills"}),
    ),
    # NATS
    ("nats", "dev", "sync_interval", lambda d: nats_conf(d, lambda c: c.replace("sync_interval: always", ""))),
    (
        "nats",
        "prod",
        "sync_interval",
        lambda d: nats_conf(d, lambda c: c.replace("sync_interval: always", "sync_interval: 1s")),
    ),
    (
        "nats",
        "prod",
        "sync_interval",
        lambda d: nats_conf(d, lambda c: c.replace("  sync_interval: always", "  # sync_interval: always")),
    ),
    ("nats", "prod", "stream replicas 1", lambda d: set_engage_config(d, "ENGAGE_NATS_STREAM_REPLICAS", "1")),
    ("nats", "dev", "stream replicas 3", lambda d: set_engage_config(d, "ENGAGE_NATS_STREAM_REPLICAS", "3")),
    (
        "nats",
        "prod",
        "cluster routes",
        lambda d: nats_conf(d, lambda c: c.replace("    nats://nats-2.nats-headless:6222\n", "")),
    ),
    (
        "nats",
        "dev",
        "persistent volume",
        lambda d: nats_conf(d, lambda c: c.replace("store_dir: /data", "store_dir: /tmp")),
    ),
    (
        "nats",
        "prod",
        "shares the data volume",
        lambda d: obj(d, "StatefulSet", "nats")["spec"]["volumeClaimTemplates"][0]["metadata"].update(name="config"),
    ),
    # disruption (prod)
    ("disruption", "prod", "no PodDisruptionBudget", lambda d: remove(d, "PodDisruptionBudget", "roles")),
    ("disruption", "prod", "zones", lambda d: pod_spec(d, "StatefulSet", "nats").pop("topologySpreadConstraints")),
    (
        "disruption",
        "prod",
        "minReplicas",
        lambda d: obj(d, "HorizontalPodAutoscaler", "roles")["spec"].update(minReplicas=2),
    ),
    ("disruption", "prod", "sets replicas", lambda d: obj(d, "Deployment", "roles")["spec"].update(replicas=3)),
    ("disruption", "prod", "3 instances", lambda d: obj(d, "Cluster", "engage-pg")["spec"].update(instances=1)),
    (
        "disruption",
        "prod",
        "Deployment/gateway: no PodDisruptionBudget",
        lambda d: remove(d, "PodDisruptionBudget", "gateway"),
    ),
    (
        "disruption",
        "prod",
        "Deployment/skills: no HorizontalPodAutoscaler",
        lambda d: remove(d, "HorizontalPodAutoscaler", "skills"),
    ),
    (
        "disruption",
        "prod",
        "Deployment/incentives: not spread across zones",
        lambda d: pod_spec(d, "Deployment", "incentives").pop("topologySpreadConstraints"),
    ),
    ("disruption", "dev", "no PodDisruptionBudget", lambda d: None),  # dev has none: the check would fail there
]

CHECKS = {**POLICIES, "disruption": check_disruption}


@pytest.mark.parametrize(
    ("policy", "overlay", "expected", "breakage"),
    BREAKAGES,
    ids=[f"{p}-{o}-{e}" for p, o, e, _ in BREAKAGES],
)
def test_policy_fails_on_a_broken_manifest(
    policy: str, overlay: str, expected: str, breakage: Callable[[Docs], None]
) -> None:
    assert overlay in OVERLAYS
    docs = rendered(overlay)
    check = CHECKS[policy]
    if breakage is not None:
        breakage(docs)
    found = check(docs)
    assert any(expected in problem for problem in found), found


def test_every_policy_has_a_breakage() -> None:
    assert {p for p, *_ in BREAKAGES} == set(CHECKS)
    assert engage_config(rendered("prod"))["ENGAGE_NATS_STREAM_REPLICAS"] == "3"
