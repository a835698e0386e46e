"""Fixtures over the rendered overlays (`kubectl kustomize`, once per session)."""

from __future__ import annotations

import pytest

from tests.k8s.manifests import OVERLAYS, Docs, rendered


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs(overlay: str) -> Docs:
    return rendered(overlay)
