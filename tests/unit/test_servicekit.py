"""servicekit pieces that need no network: settings, security, migrations files, wiring."""

import gc
import importlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from faststream.security import SASLScram512
from faststream.specification import AsyncAPI

from contracts import SERVICES, consumed_by, produced_by
from servicekit.broker import make_security
from servicekit.db import Database, load_migrations
from servicekit.housekeeping import ProcessedEventsPruner
from servicekit.runtime import collect_garbage_less_often
from servicekit.service import Service
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.unit


def _service(name: str) -> Service:
    settings_module = importlib.import_module(f"{name}.settings")
    settings_class = getattr(settings_module, f"{name.capitalize()}Settings")
    bootstrap = importlib.import_module(f"{name}.bootstrap").bootstrap
    service: Service = bootstrap(settings_class())
    return service


def test_each_service_reads_its_own_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUPING_HTTP_PORT", "9999")
    monkeypatch.setenv("SCRAPER_HTTP_PORT", "7777")
    from grouping.settings import GroupingSettings
    from scraper.settings import ScraperSettings

    assert GroupingSettings().http_port == 9999
    assert ScraperSettings().http_port == 7777
    assert GroupingSettings().schema_name == "grouping"


def test_redacted_settings_hide_secrets() -> None:
    settings = ServiceSettings(
        service_name="x",
        database_url="postgresql://x:hunter2@db/x",
        kafka_sasl_password="s3cret",
    )
    shown = json.dumps(settings.redacted())
    assert "hunter2" not in shown
    assert "s3cret" not in shown
    assert "hunter2" not in repr(settings)


def test_scram_over_tls_is_built_from_settings() -> None:
    settings = ServiceSettings(
        service_name="x",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="grouping",
        kafka_sasl_password="pw",
    )
    security = make_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
    assert security.username == "grouping"


def test_sasl_without_credentials_is_a_clear_error() -> None:
    settings = ServiceSettings(service_name="x", kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="needs kafka_sasl_mechanism"):
        make_security(settings)


def test_event_ids_are_kept_as_long_as_any_topic_can_deliver_the_event_again() -> None:
    assert ServiceSettings(service_name="x").processed_events_keep_days >= 30  # DLQs keep 30 days
    with pytest.raises(ValueError, match="applied twice"):
        ServiceSettings(service_name="x", processed_events_keep_days=7)
    with pytest.raises(ValueError, match="applied twice"):
        ProcessedEventsPruner(
            Database(ServiceSettings(service_name="x"), Path()), keep=timedelta(days=7), every_s=1
        )


def test_plaintext_needs_no_security() -> None:
    assert make_security(ServiceSettings(service_name="x")) is None


def test_migrations_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "0002_second.sql").write_text("SELECT 1;")
    assert [m.version for m in load_migrations(tmp_path)] == [1, 2, 3]
    (tmp_path / "notes.sql").write_text("")
    with pytest.raises(ValueError, match=r"NNNN_description\.sql"):
        load_migrations(tmp_path)


@pytest.mark.parametrize("name", SERVICES)
def test_service_subscribes_to_exactly_its_registry_topics(name: str) -> None:
    service = _service(name)
    subscribed = {t.name for sub in service.broker.subscribers for t in sub.topics}  # type: ignore[attr-defined]
    assert subscribed == {spec.name for spec in consumed_by(name)}
    assert all(load_migrations(service.db.migrations)), "every service ships migrations"


@pytest.mark.parametrize("name", SERVICES)
def test_every_subscriber_takes_the_consumer_session_timeout_of_its_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local stack shortens it (a restarted service rejoins its group sooner); unset, aiokafka's 10 s.
    assert _session_timeouts(name) == {10_000}
    monkeypatch.setenv(f"{name.upper()}_CONSUMER_SESSION_TIMEOUT_MS", "3000")
    assert _session_timeouts(name) == {3_000}


def _session_timeouts(name: str) -> set[int]:
    """Return the session timeouts a service's subscribers would open their consumers with."""
    subscribers = _service(name).broker.subscribers
    return {sub._connection_args["session_timeout_ms"] for sub in subscribers}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", SERVICES)
def test_asyncapi_document_lists_consumed_and_produced_channels(name: str) -> None:
    service = _service(name)
    doc = json.loads(AsyncAPI(service.broker, title=name).to_specification().to_json())
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {spec.name for spec in (*consumed_by(name), *produced_by(name))}
    for spec in consumed_by(name):
        assert spec.event.__name__ in doc["components"]["schemas"]


def test_handlers_follow_the_naming_rule() -> None:
    for name in SERVICES:
        service = _service(name)
        for sub in service.broker.subscribers:
            expected = "on_" + sub.topics[0].name  # type: ignore[attr-defined]
            expected = expected.removesuffix(".v1").replace(".", "_").replace("-", "_")
            assert [call.handler._original_call.__name__ for call in sub.calls] == [expected]


def test_every_app_answers_health_metrics_and_bad_parameters_without_starting() -> None:
    """Routes of build_app, with the lifespan not run: nothing is connected."""
    from fastapi import APIRouter
    from fastapi.testclient import TestClient

    from servicekit.app import build_app
    from servicekit.kit import make_parts

    settings = ServiceSettings(service_name="probe", health_timeout_s=0.2)
    broker, db, metrics = make_parts(settings, migrations=Path("."))
    api = APIRouter()

    @api.get("/things")
    async def things(limit: int) -> dict[str, int]:
        return {"limit": limit}

    client = TestClient(build_app(Service(settings, broker, db, metrics, api_routers=(api,))))
    assert client.get("/health/live").json() == {"status": "live", "service": "probe"}
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"broker": False, "database": False, "migrations": False}
    assert "pricestream_messages_processed" in client.get("/metrics").text
    assert client.get("/things", params={"limit": "2"}).json() == {"limit": 2}
    bad = client.get("/things", params={"limit": "many"})
    assert bad.status_code == 400
    assert bad.json()["detail"][0]["where"] == "query.limit"


def test_a_service_process_collects_garbage_less_often_and_never_walks_its_start_up_again() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        collect_garbage_less_often(ServiceSettings(service_name="gc-test").gc_threshold)
        assert gc.get_threshold() == (100_000, 10, 10)
        assert gc.get_freeze_count() > frozen
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_a_garbage_threshold_below_pythons_default_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 700"):
        ServiceSettings(service_name="gc-test", gc_threshold=10)
