"""The catalogue API without a database: problem+json 4xx, 400s that name the parameter, throttling."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from catalogue.api import build_api
from catalogue.domain import cursor
from catalogue.domain.search import fold, search_text
from catalogue.domain.throttle import Buckets, Limit
from catalogue.throttling import Throttle
from servicekit.db import Database
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
TOKENS = {"secret-token": "analyst"}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _lookup(token: str) -> str | None:
    return TOKENS.get(token)


def _app(*, anonymous: float = 600, token: float = 6000, clock: Clock | None = None) -> FastAPI:
    # The database is never opened: every request here is answered before a query runs.
    db = Database(ServiceSettings(service_name="catalogue"), migrations=Path("."))
    throttle = Throttle(
        anonymous=Limit(anonymous, burst=anonymous),
        token=Limit(token, burst=token),
        lookup=_lookup,
        monotonic=clock or Clock(),
    )
    app = FastAPI()
    app.include_router(
        build_api(db=db, clock=lambda: NOW, freshness=timedelta(days=7), throttle=throttle, page_max=5000)
    )
    return app


async def _get(app: FastAPI, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/search?q=a", "q"),
        ("/v1/search?q=milk&limit=0", "limit"),
        ("/v1/search?q=milk&chain=Bad%20Chain", "chain"),
        ("/v1/export/prices?store=12", "store"),
        ("/v1/export/prices?cursor=not-a-cursor", "cursor"),
        ("/v1/export/prices?observed_since=2026-03-01T00:00:00", "observed_since"),
        ("/v1/export/prices?observed_since=yesterday", "observed_since"),
        ("/v1/export/prices?limit=5001", "limit"),
        ("/v1/bargains?store=12", "store"),
        ("/v1/bargains?kind=cheap", "kind"),
        ("/v1/products/c/milk?store=nochain", "store"),
    ],
)
async def test_a_bad_parameter_is_a_400_problem_naming_it(path: str, param: str) -> None:
    response = await _get(_app(), path)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert body["title"] == "Bad parameter"
    assert [p["name"] for p in body["invalid-params"]] == [param]
    assert param in body["detail"]


async def test_a_body_that_is_not_json_is_a_400_naming_the_body_and_where_it_broke() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/v1/baskets/compare", content=b'{"items": [', headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 400
    [param] = response.json()["invalid-params"]
    assert param["name"] == "body"
    assert param["reason"].startswith("not JSON")
    assert "at character 11" in param["reason"]


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/products/c/milk/extra"])
async def test_an_unknown_route_under_v1_is_a_404_problem(path: str) -> None:
    response = await _get(_app(), path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == f"no route GET {path}"


async def test_an_anonymous_client_over_its_limit_gets_429_with_retry_after() -> None:
    clock = Clock()
    app = _app(anonymous=3, clock=clock)
    statuses = [(await _get(app, "/v1/export/prices?cursor=x")).status_code for _ in range(4)]
    refused = await _get(app, "/v1/export/prices?cursor=x")

    assert statuses == [400, 400, 400, 429]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    # 3 a minute: the next request is allowed 20 s after the last one was spent.
    assert refused.headers["retry-after"] == "20"
    clock.now += 20
    assert (await _get(app, "/v1/export/prices?cursor=x")).status_code == 400


async def test_a_token_holder_gets_the_higher_limit_and_an_unknown_token_is_refused() -> None:
    app = _app(anonymous=1, token=120)
    auth = {"Authorization": "Bearer secret-token"}
    statuses = [(await _get(app, "/v1/export/prices?cursor=x", headers=auth)).status_code for _ in range(2)]
    anonymous = [(await _get(app, "/v1/export/prices?cursor=x")).status_code for _ in range(2)]
    unknown = await _get(app, "/v1/export/prices?cursor=x", headers={"Authorization": "Bearer nope"})

    assert statuses == [400, 400]
    assert anonymous == [400, 429]
    assert unknown.status_code == 401
    assert unknown.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_has_response_models_and_the_problem_shape() -> None:
    spec = _app().openapi()
    search = spec["paths"]["/v1/search"]["get"]["responses"]
    assert search["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchResults")
    assert "application/problem+json" in search["429"]["content"]
    assert {"ProductPage", "ExportPage", "BargainList", "Categories", "BasketComparison", "Problem"} <= set(
        spec["components"]["schemas"]
    )


def test_buckets_refill_with_time_and_forget_the_oldest_client_when_full() -> None:
    buckets = Buckets(max_clients=2)
    limit = Limit(per_minute=60, burst=2)
    assert [buckets.take("a", limit, now_s=0) for _ in range(3)] == [0, 0, 1.0]
    assert buckets.take("a", limit, now_s=1.0) == 0
    buckets.take("b", limit, now_s=1)
    buckets.take("c", limit, now_s=1)
    assert set(buckets.tokens) == {"b", "c"}


def test_search_text_forgives_case_accents_and_hyphens() -> None:
    assert fold("Crème  Brûlée!") == "creme brulee"
    text = search_text("Weet-Bix Wholegrain Cereal 575g", "Sanitarium")
    assert text.split() == ["sanitarium", "weet", "bix", "wholegrain", "cereal", "575g", "weetbix"]


def test_a_cursor_reads_back_and_a_forged_one_is_refused() -> None:
    key = cursor.ExportKey("coles", "0042", "sku:1")
    assert cursor.decode(cursor.encode(key)) == key
    with pytest.raises(cursor.BadCursorError):
        cursor.decode(cursor.encode(key)[:-3] + "!!")
    with pytest.raises(cursor.BadCursorError):
        cursor.decode("WzFd")  # [1]
