"""SchemeService: schemes, published versions and simulation."""

from __future__ import annotations

from decimal import Decimal

import grpc
from engage.incentives.v1 import schemes_pb2, schemes_pb2_grpc

from services.incentives import messages
from services.incentives.api.behaviours import required_text
from services.incentives.app import schemes as uc
from services.incentives.app.awards import simulate
from services.incentives.domain.periods import parse_date
from services.incentives.domain.scoring import within_budget
from services.platform.db import Database
from services.platform.errors import invalid
from services.platform.resources import check_id, mask_paths, page_of, parse_name

_SCHEME_MASK = {
    "display_name",
    "description",
    "eligibility",
    "calendar",
    "measures",
    "credit_split",
    "payout",
    "budget",
}


def _scheme_name(name: str) -> tuple[str, int | None]:
    """`schemes/x` or `schemes/x@3`."""
    base, _, version = name.partition("@")
    scheme_id = parse_name(base, "schemes", "name")
    if not version:
        return scheme_id, None
    if not version.isdigit() or int(version) < 1:
        raise invalid("name", "version after '@' must be a positive number")
    return scheme_id, int(version)


class SchemeServicer(schemes_pb2_grpc.SchemeServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateScheme(
        self, request: schemes_pb2.CreateSchemeRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.Scheme:
        scheme_id = check_id(request.scheme_id, "scheme_id")
        required_text(request.scheme.display_name, "scheme.display_name")
        content = messages.scheme_content_in(request.scheme)
        row, versions = await uc.create_scheme(self.db, scheme_id, content, request.request_id, request)
        return messages.scheme_out(row, versions)

    async def GetScheme(
        self, request: schemes_pb2.GetSchemeRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.Scheme:
        scheme_id, version = _scheme_name(request.name)
        row, versions, found = await uc.get_scheme(self.db, scheme_id, version)
        return messages.scheme_version_out(row, found, versions) if found else messages.scheme_out(row, versions)

    async def ListSchemes(
        self, request: schemes_pb2.ListSchemesRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.ListSchemesResponse:
        page = page_of(request.page_size, request.page_token)
        rows = await uc.list_schemes(self.db, page)
        return schemes_pb2.ListSchemesResponse(
            schemes=[messages.scheme_out(r, v) for r, v in rows],
            next_page_token=page.next_token(rows[-1][0].id if rows else None, len(rows)),
        )

    async def UpdateScheme(
        self, request: schemes_pb2.UpdateSchemeRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.Scheme:
        scheme_id = parse_name(request.scheme.name, "schemes", "scheme.name")
        paths = mask_paths(request.update_mask, _SCHEME_MASK)
        if "display_name" in paths:
            required_text(request.scheme.display_name, "scheme.display_name")
        partial = schemes_pb2.Scheme()
        partial.CopyFrom(request.scheme)
        # Fields outside the mask may be empty; give them harmless values to parse.
        if "calendar" not in paths:
            partial.calendar.CopyFrom(schemes_pb2.Calendar(period_kind=schemes_pb2.PERIOD_KIND_MONTH, time_zone="UTC"))
        content = messages.scheme_content_in(partial)
        row, versions = await uc.update_scheme(self.db, scheme_id, content, paths, request.scheme.etag)
        return messages.scheme_out(row, versions)

    async def PublishScheme(
        self, request: schemes_pb2.PublishSchemeRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.Scheme:
        scheme_id = parse_name(request.name, "schemes", "name")
        effective = parse_date(request.effective_from, "effective_from")
        row, versions = await uc.publish_scheme(self.db, scheme_id, effective, request.etag)
        return messages.scheme_out(row, versions)

    async def SimulateScheme(
        self, request: schemes_pb2.SimulateSchemeRequest, context: grpc.aio.ServicerContext
    ) -> schemes_pb2.SimulateSchemeResponse:
        scheme_id = parse_name(request.name, "schemes", "name")
        results = await simulate(self.db, scheme_id, list(request.periods))
        return schemes_pb2.SimulateSchemeResponse(
            periods=[
                schemes_pb2.SimulatedPeriod(
                    period=r.period.id,
                    participant_count=len(r.payouts),
                    paid_count=sum(1 for p in r.payouts.values() if p.payout > 0),
                    total_payout=messages.amount_out(r.total, r.currency),
                    budget=messages.amount_out(Decimal(repr(r.budget)).quantize(Decimal("0.01")), r.currency),
                    within_budget=within_budget(r.total, r.budget),
                    payouts=[
                        schemes_pb2.SimulatedPayout(
                            person=f"people/{person}",
                            attainment=p.attainment,
                            payout=messages.amount_out(p.payout, r.currency),
                        )
                        for person, p in r.payouts.items()
                    ],
                )
                for r in results
            ]
        )
