"""Each Engage container's environment, as Kubernetes would give it, is one
the service's own settings class accepts, and it agrees with the ports the
manifests declare: the service listens on all interfaces, on the port the
probes and the Service use, exports metrics where Prometheus scrapes, reads
PostgreSQL at engage-pg-rw and verifies tokens against a mounted key set."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import PurePosixPath

import pytest
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from services.platform.settings import ServiceSettings
from tests.k8s.manifests import Docs, Pod, container_ports, containers, env_of, pods


def settings_class(module: str) -> type[ServiceSettings]:
    """services.<name>.main -> the ServiceSettings subclass in services.<name>.settings."""
    package = module.rsplit(".", 1)[0]
    settings = importlib.import_module(f"{package}.settings")
    found = [
        v
        for v in vars(settings).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    ]
    assert len(found) == 1, f"{package}.settings defines {found}"
    return found[0]


def service_pods(docs: Docs) -> list[Pod]:
    found = [p for p in pods(docs) if p.is_service]
    assert found
    return found


def test_every_command_is_a_module_of_the_repository(docs: Docs) -> None:
    for pod in service_pods(docs):
        for c in containers(pod.spec):
            command = c["command"]
            assert command[:2] == ["python", "-m"], pod.owner
            assert importlib.util.find_spec(command[2]) is not None, f"{pod.owner}: no module {command[2]}"


def test_the_settings_class_accepts_the_environment(docs: Docs, monkeypatch: pytest.MonkeyPatch) -> None:
    for pod in service_pods(docs):
        ports = container_ports(pod.spec)
        for c in containers(pod.spec):
            where = f"{pod.owner}/{c['name']}"
            env = env_of(c, docs, pod.namespace)
            with monkeypatch.context() as m:
                for key in os.environ:
                    if key.startswith(("ENGAGE_", "PG")):
                        m.delenv(key)
                for key, value in env.items():
                    m.setenv(key, value if value is not None else "from-a-secret")
                settings: BaseSettings = settings_class(c["command"][2])()
            assert isinstance(settings, ServiceSettings)
            assert settings.database_url == env["ENGAGE_DATABASE_URL"], where
            assert settings.database_url.startswith("postgresql+asyncpg://engage-pg-rw:5432/"), where
            assert "@" not in settings.database_url, f"{where}: credentials belong in PGUSER/PGPASSWORD"
            assert env["PGPASSWORD"] is None and env["PGUSER"] is None, f"{where}: credentials not from a Secret"
            if c["command"][2].endswith(".migrate"):
                continue
            assert settings.grpc_host == "0.0.0.0", f"{where}: listens on {settings.grpc_host} only"
            assert settings.grpc_port == ports["grpc"], where
            assert settings.metrics_port == ports["metrics"], where
            assert pod.annotations["prometheus.io/port"] == str(settings.metrics_port), where
            assert pod.annotations["prometheus.io/scrape"] == "true", where
            assert settings.auth_mode == "jwt", where
            assert settings.log_format == "json", where
            mounts = [m_["mountPath"] for m_ in c["volumeMounts"]]
            jwks = PurePosixPath(settings.auth_jwks_file)
            assert any(jwks.is_relative_to(m_) for m_ in mounts), f"{where}: {jwks} is not on a mounted volume"


def test_init_containers_migrate_the_same_database_as_the_service(docs: Docs) -> None:
    for pod in pods(docs):
        if not pod.is_service:
            continue
        (main,) = pod.spec["containers"]
        (init,) = pod.spec["initContainers"]
        assert init["command"][2] == main["command"][2].replace(".main", ".migrate"), pod.owner
        assert importlib.util.find_spec(init["command"][2]) is not None
        assert (
            env_of(init, docs, pod.namespace)["ENGAGE_DATABASE_URL"]
            == env_of(main, docs, pod.namespace)["ENGAGE_DATABASE_URL"]
        )
        assert init["image"] == main["image"], pod.owner


def test_skills_and_incentives_read_their_own_settings(docs: Docs, monkeypatch: pytest.MonkeyPatch) -> None:
    by_name = {p.workload["metadata"]["name"]: p for p in service_pods(docs)}
    skills = env_of(by_name["skills"].spec["containers"][0], docs, by_name["skills"].namespace)
    assert float(skills["ENGAGE_EXPIRY_SWEEP_SECONDS"] or 0) > 0
    incentives = env_of(by_name["incentives"].spec["containers"][0], docs, by_name["incentives"].namespace)
    assert incentives["ENGAGE_CRM_STREAM"] == "CRM_BEHAVIOURS"
    assert incentives["ENGAGE_CRM_SUBJECTS"] == "crm.behaviours.v1.>"
    assert int(incentives["ENGAGE_CONSUMER_MAX_DELIVER"] or 0) >= 1


def test_the_gateway_settings_accept_the_environment(overlay: str, docs: Docs, monkeypatch: pytest.MonkeyPatch) -> None:
    (pod,) = [p for p in pods(docs) if p.is_gateway]
    (c,) = pod.spec["containers"]
    assert c["command"] == ["python", "-m", "gateway.main"]
    assert "initContainers" not in pod.spec
    env = env_of(c, docs, pod.namespace)
    with monkeypatch.context() as m:
        for key in os.environ:
            if key.startswith(("ENGAGE_", "PG")):
                m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value if value is not None else "from-a-secret")
        settings = GatewaySettings()
    ports = container_ports(pod.spec)
    assert settings.host == "0.0.0.0"
    assert settings.port == ports["http"]
    assert settings.dev_issuer is False, "the development issuer must never run in a cluster"
    assert settings.cookie_secure is (overlay == "prod")
    assert settings.oidc_issuer == env["ENGAGE_AUTH_ISSUER"]
    assert settings.oidc_audience == env["ENGAGE_AUTH_AUDIENCE"]
    assert settings.nats_url == env["ENGAGE_NATS_URL"]
    assert settings.log_format == "json"
    if overlay == "prod":
        assert settings.public_origin.startswith("https://")
        (route,) = [r for r in docs if r["kind"] == "HTTPRoute"]
        assert settings.public_origin == f"https://{route['spec']['hostnames'][0]}"
    mounts = [m_["mountPath"] for m_ in c["volumeMounts"]]
    jwks = PurePosixPath(settings.oidc_jwks_file)
    assert any(jwks.is_relative_to(m_) for m_ in mounts), f"{jwks} is not on a mounted volume"
    # The roles target is a rendered Service and port.
    target = settings.roles_target.removeprefix("dns:///")
    host, port = target.rsplit(":", 1)
    service = next(s for s in docs if s["kind"] == "Service" and s["metadata"]["name"] == host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    # Nothing writes: no writable volume at all.
    assert all(m_.get("readOnly") for m_ in c["volumeMounts"])
