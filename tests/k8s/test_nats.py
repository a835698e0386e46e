"""NATS in Kubernetes: the configuration each overlay ships is one the NATS
server accepts (checked with the same nats-server the tests run), it flushes
every write, and prod runs a 3-node cluster whose streams have 3 replicas."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.k8s.manifests import (
    Docs,
    containers,
    env_of,
    nats_block,
    nats_servers,
    nats_setting,
    pods,
    rendered,
)
from tests.support.nats_server import nats_binary


def test_the_nats_server_accepts_each_overlays_config(docs: Docs, tmp_path: Path) -> None:
    (server,) = nats_servers(docs)
    config = tmp_path / "nats.conf"
    config.write_text(server.config)
    result = subprocess.run(
        [nats_binary(), "-c", str(config), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SERVER_NAME": f"{server.statefulset['metadata']['name']}-0"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_nats_server_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above is a real one: nats-server -t refuses a bad value."""
    (server,) = nats_servers(rendered("dev"))
    config = tmp_path / "nats.conf"
    config.write_text(server.config.replace("sync_interval: always", "sync_interval: sometimes"))
    result = subprocess.run(
        [nats_binary(), "-c", str(config), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SERVER_NAME": "nats-0"},
        check=False,
    )
    assert result.returncode != 0 and "sync_interval" in result.stderr


def test_jetstream_syncs_every_write_in_every_overlay(docs: Docs) -> None:
    for server in nats_servers(docs):
        jetstream = nats_block(server.config, "jetstream")
        assert jetstream is not None
        assert nats_setting(jetstream, "sync_interval") == "always"


@pytest.mark.parametrize(("overlay", "servers", "stream_replicas"), [("dev", 1, "1"), ("prod", 3, "3")])
def test_stream_replicas_match_the_nats_servers(overlay: str, servers: int, stream_replicas: str) -> None:
    docs = rendered(overlay)
    (server,) = nats_servers(docs)
    assert server.replicas == servers
    service_pods = [p for p in pods(docs) if p.is_service]
    assert service_pods
    for pod in service_pods:
        for c in containers(pod.spec):
            assert env_of(c, docs, pod.namespace)["ENGAGE_NATS_STREAM_REPLICAS"] == stream_replicas, pod.owner


def test_prod_nats_is_a_cluster_over_the_headless_service() -> None:
    (server,) = nats_servers(rendered("prod"))
    cluster = nats_block(server.config, "cluster")
    assert cluster is not None
    assert nats_setting(cluster, "port") == "6222"
    assert nats_setting(cluster, "no_advertise") == "true"
    assert server.statefulset["spec"]["podManagementPolicy"] == "Parallel"
    spec = server.statefulset["spec"]["template"]["spec"]
    lame_duck = 10 + 30  # lame_duck_grace_period + lame_duck_duration in the config
    assert "lame_duck_grace_period: 10s" in server.config and "lame_duck_duration: 30s" in server.config
    assert spec["terminationGracePeriodSeconds"] >= lame_duck + 20
