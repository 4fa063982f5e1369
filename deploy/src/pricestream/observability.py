"""Prometheus and Grafana for the compose stack, under the `observability` profile.

`docker compose --profile observability up -d` adds them: Prometheus scrapes every service's
/metrics (deploy/observability/prometheus.yml) and Grafana shows the pricestream dashboard
(deploy/observability/grafana/), both published on this host only.
"""

from pathlib import Path
from typing import Any

import yaml

PROFILE = "observability"
PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
GRAFANA_IMAGE = "grafana/grafana:12.1.1"
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
FOLDER = "deploy/observability"
"""Where the scrape config, the Grafana provisioning and the dashboard live, from the project root."""


def _healthcheck(url: str) -> dict[str, Any]:
    """Return a healthcheck by the image's own busybox wget."""
    return {
        "test": ["CMD", "wget", "-q", "--spider", url],
        "interval": "10s",
        "timeout": "5s",
        "retries": 6,
        "start_period": "20s",
    }


def observability_services() -> dict[str, dict[str, Any]]:
    """Return the compose services of Prometheus and Grafana, started only with their profile."""
    return {
        "prometheus": {
            "image": PROMETHEUS_IMAGE,
            "profiles": [PROFILE],
            "command": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.retention.time=15d"],
            "volumes": [f"./{FOLDER}/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
            "ports": [f"127.0.0.1:{PROMETHEUS_PORT}:{PROMETHEUS_PORT}"],
            "healthcheck": _healthcheck(f"http://127.0.0.1:{PROMETHEUS_PORT}/-/healthy"),
            "restart": "unless-stopped",
        },
        "grafana": {
            "image": GRAFANA_IMAGE,
            "profiles": [PROFILE],
            "environment": {
                # Published on this host only: viewers need no account to see the dashboard.
                "GF_AUTH_ANONYMOUS_ENABLED": "true",
                "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
                "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": "/var/lib/grafana/dashboards/pricestream.json",
            },
            "volumes": [
                f"./{FOLDER}/grafana/provisioning:/etc/grafana/provisioning:ro",
                f"./{FOLDER}/grafana/dashboards:/var/lib/grafana/dashboards:ro",
            ],
            "ports": [f"127.0.0.1:{GRAFANA_PORT}:{GRAFANA_PORT}"],
            "depends_on": {"prometheus": {"condition": "service_healthy"}},
            "healthcheck": _healthcheck(f"http://127.0.0.1:{GRAFANA_PORT}/api/health"),
            "restart": "unless-stopped",
        },
    }


def scrape_targets(root: Path) -> dict[str, str]:
    """Return the job -> `name:port` that the committed Prometheus config scrapes."""
    config = yaml.safe_load((root / FOLDER / "prometheus.yml").read_text())
    targets: dict[str, str] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[job["job_name"]] = f"{name}:{sd['port']}"
    return targets
