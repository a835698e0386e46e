"""Every overlay renders with `kubectl kustomize`, holds what the issue asks of
it, and every name it refers to exists: rendered, created by CloudNativePG, or
created by the operator as k8s/README.md says."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.k8s.manifests import (
    K8S,
    OVERLAYS,
    Docs,
    container_ports,
    containers,
    find,
    ident,
    namespace_of,
    of_kind,
    pods,
    rendered,
    selects,
)

README = (K8S / "README.md").read_text()

GRPC_SERVICES = ("roles", "skills", "incentives")
DEPLOYMENTS = (*GRPC_SERVICES, "gateway")

# Created by CloudNativePG for the Cluster engage-pg, not by the manifests.
CREATED_BY_CNPG = {("Secret", "engage-pg-ca"), ("Service", "engage-pg-rw")}


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_every_overlay_renders_without_duplicates(docs: Docs) -> None:
    assert docs
    keys = Counter((d["apiVersion"], d["kind"], namespace_of(d), d["metadata"]["name"]) for d in docs)
    assert [k for k, n in keys.items() if n > 1] == []


def test_every_namespaced_object_is_in_the_overlays_namespace(docs: Docs) -> None:
    (namespace,) = of_kind(docs, "Namespace")
    name = namespace["metadata"]["name"]
    assert {namespace_of(d) for d in docs if d["kind"] != "Namespace"} == {name}


def _replicas(docs: Docs, kind: str, name: str) -> Any:
    found = find(docs, kind, name)
    assert found is not None, f"{kind}/{name} is not rendered"
    return found["spec"].get("replicas", found["spec"].get("instances"))


def test_dev_runs_one_of_each_with_nats_and_postgres_in_the_cluster() -> None:
    docs = rendered("dev")
    for name in DEPLOYMENTS:
        assert _replicas(docs, "Deployment", name) == 1, name
    assert _replicas(docs, "StatefulSet", "nats") == 1
    assert _replicas(docs, "StatefulSet", "postgres") == 1
    assert find(docs, "Service", "engage-pg-rw") is not None
    assert of_kind(docs, "Cluster") == [] and of_kind(docs, "HorizontalPodAutoscaler") == []


def test_prod_runs_three_of_each_with_cloudnativepg_and_a_nats_cluster() -> None:
    docs = rendered("prod")
    assert _replicas(docs, "Cluster", "engage-pg") == 3
    assert _replicas(docs, "StatefulSet", "nats") == 3
    assert find(docs, "StatefulSet", "postgres") is None
    for name in DEPLOYMENTS:
        hpa = find(docs, "HorizontalPodAutoscaler", name)
        assert hpa is not None and hpa["spec"]["minReplicas"] == 3, name
    assert {p["metadata"]["name"] for p in of_kind(docs, "PodDisruptionBudget")} == {*DEPLOYMENTS, "nats"}
    assert find(docs, "ScheduledBackup", "engage-pg-daily") is not None
    for name in GRPC_SERVICES:
        assert find(docs, "GRPCRoute", name) is not None, name
    assert find(docs, "HTTPRoute", "gateway") is not None


def test_each_service_has_its_own_database_login_and_secret(docs: Docs) -> None:
    """Never one database for two services: distinct database, Secret and (in
    prod) CloudNativePG Database and managed role per service."""
    seen: dict[str, tuple[str, str]] = {}
    for pod in pods(docs):
        if not pod.is_service:
            continue
        (main,) = pod.spec["containers"]
        env = {e["name"]: e for e in main["env"]}
        database = env["ENGAGE_DATABASE_URL"]["value"].rsplit("/", 1)[-1]
        secret = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        assert env["PGUSER"]["valueFrom"]["secretKeyRef"]["name"] == secret, pod.owner
        seen[pod.workload["metadata"]["name"]] = (database, secret)
    assert set(seen) == set(GRPC_SERVICES)
    assert len({d for d, _ in seen.values()}) == len(seen), seen
    assert len({s for _, s in seen.values()}) == len(seen), seen
    for name, (database, secret) in seen.items():
        assert (database, secret) == (name, f"engage-{name}-db")
    clusters = of_kind(docs, "Cluster")
    for cluster in clusters:
        roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
        for name, (_database, secret) in seen.items():
            assert roles[name]["passwordSecret"]["name"] == secret
        owners = {d["spec"]["name"]: d["spec"]["owner"] for d in of_kind(docs, "Database")}
        assert owners == {name: name for name in GRPC_SERVICES}
    if not clusters:  # dev: the init script creates one role and database per service
        script = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("postgres-initdb"))
        body = script["data"]["10-engage-databases.sh"]
        for name in GRPC_SERVICES:
            assert f'create_service_database {name} "$ENGAGE_{name.upper()}_DB_PASSWORD"' in body


def _references(docs: Docs) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the objects use."""
    refs: set[tuple[str, str]] = set()
    for pod in pods(docs):
        for c in containers(pod.spec):
            for source in c.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in source:
                        refs.add((kind, source[key]["name"]))
            for item in c.get("env", []):
                value_from = item.get("valueFrom", {})
                for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if key in value_from:
                        refs.add((kind, value_from[key]["name"]))
        for volume in pod.spec.get("volumes", []):
            if "configMap" in volume:
                refs.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                refs.add(("Secret", volume["secret"]["secretName"]))
    for cluster in of_kind(docs, "Cluster"):
        for role in cluster["spec"].get("managed", {}).get("roles", []):
            if "passwordSecret" in role:
                refs.add(("Secret", role["passwordSecret"]["name"]))
    for store in of_kind(docs, "ObjectStore"):
        for cred in store["spec"]["configuration"].get("s3Credentials", {}).values():
            if isinstance(cred, dict) and "name" in cred:
                refs.add(("Secret", cred["name"]))
    return refs


def test_every_configmap_and_secret_is_rendered_or_documented_for_the_operator(docs: Docs) -> None:
    rendered_names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    external = _references(docs) - rendered_names - CREATED_BY_CNPG
    assert external, "the services need at least their database Secret from the operator"
    undocumented = sorted(name for _kind, name in external if f"`{name}`" not in README)
    assert undocumented == [], "k8s/README.md must say how to create these"
    assert not any(d["kind"] == "Secret" for d in docs), "no Secret values in the repository"


def _port_names(ports: dict[str, int]) -> set[Any]:
    return set(ports) | set(ports.values())


def test_every_service_selects_pods_that_have_its_target_ports(docs: Docs) -> None:
    templates = pods(docs)
    for service in of_kind(docs, "Service"):
        selected = [p for p in templates if selects({"matchLabels": service["spec"]["selector"]}, p.labels)]
        assert selected, f"{ident(service)} selects no pod"
        for port in service["spec"]["ports"]:
            for pod in selected:
                assert port["targetPort"] in _port_names(container_ports(pod.spec)), (ident(service), pod.owner)


def test_every_name_an_object_refers_to_exists(docs: Docs) -> None:
    def exists(kind: str, name: str) -> bool:
        return find(docs, kind, name) is not None or (kind, name) in CREATED_BY_CNPG

    for pod in pods(docs):
        assert exists("ServiceAccount", pod.spec["serviceAccountName"]), pod.owner
    for sts in of_kind(docs, "StatefulSet"):
        assert exists("Service", sts["spec"]["serviceName"]), ident(sts)
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert exists(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]), ident(hpa)
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert any(selects(pdb["spec"]["selector"], p.labels) for p in pods(docs)), ident(pdb)
    for route in of_kind(docs, "GRPCRoute") + of_kind(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                service = find(docs, "Service", backend["name"])
                assert service is not None, ident(route)
                assert backend["port"] in {p["port"] for p in service["spec"]["ports"]}, ident(route)
    clusters = {c["metadata"]["name"]: c for c in of_kind(docs, "Cluster")}
    for cluster in clusters.values():
        for plugin in cluster["spec"].get("plugins", []):
            assert exists("ObjectStore", plugin["parameters"]["barmanObjectName"]), ident(cluster)
    for backup in of_kind(docs, "ScheduledBackup"):
        assert backup["spec"]["cluster"]["name"] in clusters, ident(backup)
    for database in of_kind(docs, "Database"):
        owner_cluster = clusters.get(database["spec"]["cluster"]["name"])
        assert owner_cluster is not None, ident(database)
        owners = {r["name"] for r in owner_cluster["spec"]["managed"]["roles"]}
        assert database["spec"]["owner"] in owners, f"{ident(database)}: owner is not a managed role"


@pytest.mark.parametrize("overlay", ["prod"])
def test_each_service_database_is_declared_in_cloudnativepg(overlay: str) -> None:
    docs = rendered(overlay)
    for pod in pods(docs):
        if not pod.is_service:
            continue
        for c in containers(pod.spec):
            url = next(e["value"] for e in c["env"] if e["name"] == "ENGAGE_DATABASE_URL")
            database = url.rsplit("/", 1)[-1]
            assert any(d["spec"]["name"] == database for d in of_kind(docs, "Database")), (pod.owner, database)
