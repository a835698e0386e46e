"""Skill histories of the demo company, loaded through the skills gRPC API.

`make run` loads them after the demo company (scripts/demo_company.py). To
load them yourself into a running skills service that has seen the roles
events of the demo company:

    .venv/bin/python -m scripts.demo_skills [--target 127.0.0.1:50052]

For each person and each skill their roles require: manager assessments
around the requirement, self-assessments, certifications
(services/skills/demo_histories.py). Every row has an external id, so a
second load reports every row unchanged. The history is dated from the first
day of the current month; rows sent again in a later month are reported as
rejected (changed), and the history loaded first stays.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from engage.skills.v1 import assessments_pb2_grpc, fit_pb2, fit_pb2_grpc

from scripts import demo_company
from services.skills.demo_histories import DemoHolder, history_rows

# Seconds to wait for the skills service to have read the demo company's role assignments.
PROJECTION_WAIT_SECONDS = 30.0
IMPORT_SECONDS = 120.0


@dataclass(frozen=True)
class SkillsReport:
    created: int
    unchanged: int
    rejected: int
    seconds: float

    def line(self) -> str:
        return (
            f"assessments   {self.created + self.unchanged + self.rejected} "
            f"({self.created} created, {self.unchanged} unchanged, {self.rejected} rejected)"
        )


def required_levels(company: demo_company.Company) -> dict[str, dict[str, int]]:
    """person id -> skill id -> the highest level any of the person's roles requires."""
    specs = {spec.id: spec for spec in demo_company.ROLES}
    required: dict[str, dict[str, int]] = defaultdict(dict)
    for assignment in company.assignments:
        for skill, level, _weight, _mandatory in specs[assignment.role].skills:
            required[assignment.person][skill] = max(required[assignment.person].get(skill, 0), level)
    return required


def history_anchor(now: datetime | None = None) -> datetime:
    """The first day of the current month (UTC): the date the history is told from."""
    today = now or datetime.now(UTC)
    return datetime(today.year, today.month, 1, tzinfo=UTC)


def wait_for_projection(
    channel: grpc.Channel,
    company: demo_company.Company,
    metadata: Sequence[tuple[str, str]],
    wait_seconds: float,
) -> None:
    """Until the skills service knows the demo company's last assignment (it follows the roles events)."""
    fit = fit_pb2_grpc.RoleFitServiceStub(channel)
    last = company.assignments[-1]
    request = fit_pb2.GetRoleFitRequest(person=f"people/{last.person}", role=f"roles/{last.role}")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fit.GetRoleFit(request, metadata=metadata, timeout=5)
            return
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def load_skill_histories(
    target: str,
    token: str,
    company: demo_company.Company,
    wait_seconds: float = PROJECTION_WAIT_SECONDS,
) -> SkillsReport:
    """Imports the histories once the skills service has caught up with the roles events; raises grpc.RpcError."""
    started = time.monotonic()
    metadata: list[tuple[str, str]] = [("authorization", f"Bearer {token}")] if token else []
    holders = [DemoHolder(person, required) for person, required in sorted(required_levels(company).items())]
    rows = list(history_rows(holders, history_anchor()))
    with grpc.insecure_channel(target) as channel:
        wait_for_projection(channel, company, metadata, wait_seconds)
        assessments = assessments_pb2_grpc.AssessmentServiceStub(channel)
        response = assessments.ImportAssessments(iter(rows), metadata=metadata, timeout=IMPORT_SECONDS)
    return SkillsReport(
        created=response.created_count,
        unchanged=response.unchanged_count,
        rejected=response.rejected_count,
        seconds=time.monotonic() - started,
    )


# ---- command line ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    port = os.environ.get("ENGAGE_SKILLS_GRPC_PORT", "50052")
    parser = argparse.ArgumentParser(
        description="Load the demo company's skill histories into a running skills service."
    )
    parser.add_argument("--target", default=f"127.0.0.1:{port}", help="skills gRPC address (default %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get("ENGAGE_TOKEN", ""),
        help="bearer token of an HR administrator (default $ENGAGE_TOKEN; not needed with ENGAGE_AUTH_MODE=dev)",
    )
    args = parser.parse_args(argv)
    try:
        report = load_skill_histories(args.target, args.token, demo_company.build_company())
    except grpc.RpcError as error:
        print(f"loading the skill histories failed: {demo_company.describe(error)}", file=sys.stderr)
        return 1
    print(f"skill histories loaded into {args.target} in {report.seconds:.1f} s: {report.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
