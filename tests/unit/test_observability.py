"""The compose stack's Prometheus and Grafana: what they scrape and chart exists."""

import json
import re
from pathlib import Path

import pytest
import yaml

from contracts import SERVICES
from pricestream import compose
from pricestream.observability import FOLDER, PROFILE, scrape_targets
from servicekit.metrics import Metrics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / FOLDER / "grafana" / "dashboards" / "pricestream.json"


def test_prometheus_scrapes_every_service_on_its_compose_port() -> None:
    config = compose.default_config()
    assert scrape_targets(ROOT) == {name: f"{name}:{config.service_port(name)}" for name in SERVICES}


def test_prometheus_and_grafana_start_only_with_their_profile_and_mount_existing_files() -> None:
    services = compose.compose_document(compose.default_config())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == [PROFILE]
        for volume in services[name]["volumes"]:
            assert (ROOT / volume.split(":")[0]).exists(), volume
    assert all("profiles" not in services[name] for name in SERVICES), "the services run without it"


def test_the_dashboard_charts_only_series_the_services_expose() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = {
        line.split()[2] for line in Metrics().render().decode().splitlines() if line.startswith("# TYPE")
    }
    # Counters are charted by their _total, histograms by their _bucket.
    exposed |= {f"{name}_total" for name in exposed} | {f"{name}_bucket" for name in exposed}
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:pricestream|process)_[a-z_]+", target["expr"])
    }
    assert charted, "the dashboard charts something"
    assert charted <= exposed, charted - exposed
    assert {"pricestream_consumer_lag", "pricestream_outbox_waiting"} <= charted
    provider = yaml.safe_load((ROOT / FOLDER / "grafana/provisioning/dashboards/pricestream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
