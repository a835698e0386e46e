"""The single-resource reads (`GET /api/v1/{collection}/{id}` of org units, people, roles, decision categories
and assignments: what screens and integrations call most), dispatched straight to their FastAPI route's endpoint
and permission dependency, without FastAPI's router, dependency injection and exception middleware, which cost
the gateway about a third of such a read.

The routes stay declared as usual (OpenAPI, permissions, the route matrix of the tests), and FastAPI answers
every request this does not take: another method, or a path parameter the route's pattern refuses (422).
What is taken runs the same code: the route's `requires` dependency, its endpoint, and the app's handler
for problems; the route is put in the scope, so metrics label it by its template.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.problems import ProblemError

# Routes taken here: each takes path parameters, optionally the request, and its `requires` dependency, and
# returns its Response itself (`api._resource`).
FAST_PATHS = (
    "/api/v1/orgUnits/{unit_id}",
    "/api/v1/people/{person_id}",
    "/api/v1/roles/{role_id}",
    "/api/v1/decisionCategories/{category_id}",
    "/api/v1/assignments/{assignment_id}",
)


def _pattern(path: str, constraints: list[Any]) -> re.Pattern[str]:
    """A path parameter's one constraint, its pattern (checked here as FastAPI would)."""
    patterns = [getattr(c, "pattern", None) for c in constraints]
    if len(patterns) != 1 or not isinstance(patterns[0], str):
        raise ValueError(f"{path}: each path parameter must be constrained by exactly a pattern")
    return re.compile(patterns[0])


class _Read:
    def __init__(self, route: APIRoute):
        dependant = route.dependant
        if dependant.query_params or dependant.header_params or dependant.cookie_params or dependant.body_params:
            raise ValueError(f"{route.path} takes more than its path: FastAPI must answer it")
        self.route = route
        self.endpoint = route.endpoint
        (dependency,) = dependant.dependencies
        if dependency.name is None:
            raise ValueError(f"{route.path}: its dependency must be a parameter")
        self.access: Any = dependency.call
        self.access_name: str = dependency.name
        self.patterns = {p.name: _pattern(route.path, p.field_info.metadata) for p in dependant.path_params}
        self.request_name = dependant.request_param_name

    def arguments(self, path: str) -> dict[str, Any] | None:
        """The path's parameters, or None if it is not this route's or a pattern refuses one."""
        match = self.route.path_regex.match(path)
        if match is None:
            return None
        values = match.groupdict()
        if not all(self.patterns[name].fullmatch(value) for name, value in values.items()):
            return None
        return values


class FastReads:
    def __init__(self, app: ASGIApp, routes: list[Any], on_problem: Any):
        """`routes`: the routers' own routes (with their prefixes); `on_problem`: the app's ProblemError handler."""
        self.app = app
        self.on_problem = on_problem
        by_path = {r.path: r for r in routes if isinstance(r, APIRoute) and r.methods == {"GET"}}
        self.reads = [_Read(by_path[path]) for path in FAST_PATHS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            for read in self.reads:
                arguments = read.arguments(scope["path"])
                if arguments is not None:
                    await self._answer(read, arguments, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, read: _Read, arguments: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = read.route
        scope["endpoint"] = read.endpoint
        scope["path_params"] = arguments
        request = Request(scope, receive, send)
        try:
            values: dict[str, Any] = {**arguments, read.access_name: await read.access(request)}
            if read.request_name:
                values[read.request_name] = request
            response = await read.endpoint(**values)
        except ProblemError as exc:
            response = await self.on_problem(request, exc)
        await response(scope, receive, send)
