"""The rendered objects validate offline against the Kubernetes 1.32.0 schemas
(kubernetes-validate, strict: unknown fields are errors).

Custom resources (CloudNativePG Cluster, Database, ScheduledBackup; Barman
Cloud ObjectStore; Gateway API GRPCRoute) have no schema in
kubernetes-validate and are skipped explicitly; test_render checks the names
they refer to.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.k8s.manifests import CUSTOM_KINDS, KUBERNETES_VERSION, TOOLS, Docs, find, ident, load, rendered


def problems(docs: Docs) -> list[str]:
    out = []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            out.append(f"{ident(doc)}: {e.message} at {path or '/'}")
        except kubernetes_validate.SchemaNotFoundError as e:
            out.append(f"{ident(doc)}: {e.message}")
    return out


def test_every_object_validates_against_the_kubernetes_schemas(docs: Docs) -> None:
    assert problems(docs) == []


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_every_tool_validates_against_the_kubernetes_schemas(path: Path) -> None:
    assert problems(load(path)) == []


def test_only_custom_resources_are_skipped() -> None:
    """Each skipped kind is rendered (no stale entry) and really has no schema."""
    docs = rendered("prod") + rendered("dev")
    assert {(d["apiVersion"], d["kind"]) for d in docs} >= CUSTOM_KINDS
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_fails_on_an_unknown_field_and_a_wrong_type() -> None:
    docs = rendered("prod")
    deployment = find(docs, "Deployment", "roles")
    assert deployment is not None
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50051}}
    service = find(docs, "Service", "roles")
    assert service is not None
    service["spec"]["ports"][0]["port"] = "fifty"
    found = problems(docs)
    assert any("Deployment/roles" in p and "readinesProbe" in p for p in found), found
    assert any("Service/roles" in p for p in found), found


def test_the_kubernetes_version_is_the_one_the_readme_states() -> None:
    readme = (Path(__file__).resolve().parents[2] / "k8s" / "README.md").read_text()
    assert f"Kubernetes {KUBERNETES_VERSION.rsplit('.', 1)[0]}" in readme
