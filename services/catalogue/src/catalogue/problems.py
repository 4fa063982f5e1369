"""RFC 9457 problem details for every 4xx the catalogue answers, and the route class that sends them."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from catalogue.views import Problem

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error to answer as problem details: status, title, detail, and the parameters at fault."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        invalid_params: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(title=title, status=status, detail=detail, invalid_params=invalid_params or [])
        self.headers = headers or {}


def bad_parameter(name: str, reason: str) -> ProblemError:
    """Return the 400 for one bad parameter."""
    return ProblemError(
        400, "Bad parameter", f"{name}: {reason}", invalid_params=[{"name": name, "reason": reason}]
    )


def problem_response(error: ProblemError) -> JSONResponse:
    """Return the problem as an application/problem+json response."""
    return JSONResponse(
        error.problem.model_dump(mode="json", by_alias=True),
        status_code=error.problem.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def validation_problem(exc: RequestValidationError) -> ProblemError:
    """Name each parameter FastAPI rejected and why."""
    params = []
    for error in exc.errors():
        where = [str(part) for part in error["loc"]]
        if error["type"] == "json_invalid":
            # ("body", 0): the second part is where in the text the JSON broke, not a field.
            at = f" at character {where[1]}" if len(where) > 1 else ""
            params.append({"name": "body", "reason": f"not JSON: {error['msg']}{at}"})
            continue
        # ("query", "limit") names the parameter; a body error keeps its path inside the body.
        name = ".".join(where[1:]) if len(where) > 1 else ".".join(where)
        params.append({"name": name or "body", "reason": str(error["msg"])})
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params)
    return ProblemError(400, "Bad parameter", detail, invalid_params=params)


Answer = Callable[[Request, Exception], Response]
"""Turns an exception a route's handler raised into a response, or raises it again."""


def answering_route(answer: Answer) -> type[APIRoute]:
    """Return a route class whose handler's exceptions `answer` turns into responses."""

    class AnsweringRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            """Wrap FastAPI's handler so that its errors are answered."""
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    return answer(request, exc)

            return route

    return AnsweringRoute


def _as_problem(_request: Request, exc: Exception) -> Response:
    """Answer bad parameters, refusals and 4xx as problem details; raise anything else again."""
    if isinstance(exc, RequestValidationError):
        return problem_response(validation_problem(exc))
    if isinstance(exc, ProblemError):
        return problem_response(exc)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return problem_response(ProblemError(exc.status_code, "Request refused", str(exc.detail)))
    raise exc


ProblemRoute = answering_route(_as_problem)
"""A route whose every 4xx (bad parameters, throttling, not found) is problem+json."""


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": title}
    for status, title in (
        (400, "A parameter is bad: which one and why"),
        (401, "The Bearer token is not known"),
        (404, "Not found"),
        (429, "Over the rate limit: retry after Retry-After seconds"),
    )
}
"""The 4xx answers every /v1 route documents in OpenAPI."""
