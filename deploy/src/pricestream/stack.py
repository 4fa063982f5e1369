"""The embedded local stack: broker, PostgreSQL, topics, migrations and the services."""

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from contracts import SERVICES, TOPICS, Event, consumed_by
from pricestream.config import ServiceProcess, StackConfig
from pricestream.kafka import (
    TansuBroker,
    consumer_lag,
    describe_topics,
    ensure_topics,
    holds_messages,
    ping,
    read_events,
)
from pricestream.postgres import EmbeddedPostgres
from pricestream.processes import ManagedProcess, StackError, ensure_port_free, port_in_use, tail
from servicekit.local_http import local_http

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One component's state as `pricestream status` shows it."""

    name: str
    address: str
    healthy: bool
    detail: str


# The storefront's dialects that are a real chain's web API, spoken by the scraper's real adapters.
REAL_DIALECTS = ("coles", "woolworths")
DIRECTORY_TRIES = 10

# Grouping's freshness window on the local stack, in hours: wide enough for the demo's replay.
LOCAL_GROUPING_FRESHNESS_H = 24 * 30
# The services' consumer session timeout on the local stack. Tansu holds a consumer's join for
# about half the session timeout, and for nearly twice it when the group's previous member died
# or stopped (it does not act on a leave): 5 s and 18 s at aiokafka's default 10 s, 2 s and 7 s
# at 3 s on a bare broker. Heartbeats are every 0.5 s: a member is dropped after six go unanswered.
LOCAL_CONSUMER_SESSION_TIMEOUT_MS = 3_000


class Stack:
    """Start, inspect and stop the whole local stack under one home folder."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.broker = TansuBroker(config.home, config.broker_port)
        self.postgres = EmbeddedPostgres(config.home, config.postgres_port)
        self.storefront = ManagedProcess("storefront", config.home)
        # One process per replica: `grouping`, then `grouping-2`... sharing the service's consumer group.
        self.services = {
            process: ManagedProcess(process, config.home)
            for name in SERVICES
            for process in config.process_names(name)
        }

    # --- credentials and launch settings ---------------------------------------------

    def _service_passwords(self) -> dict[str, str]:
        """Return each service's database password, generated once per stack."""
        path = self.config.home / "secrets" / "services.json"
        if path.exists():
            stored: dict[str, str] = json.loads(path.read_text())
            if set(stored) == set(SERVICES):
                return stored
        passwords = {name: secrets.token_urlsafe(24) for name in SERVICES}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)
        return passwords

    def _secret(self, name: str) -> str:
        """Return a generated secret of this stack (created on first use, kept private)."""
        path = self.config.home / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def ingest_token(self) -> str:
        """Return the bearer token of the scraper's ingest endpoint."""
        return self._secret("ingest-token")

    @property
    def storefront_url(self) -> str:
        """Return the simulated storefront's base URL."""
        return self.config.storefront_url

    def _chain_sites(self) -> dict[str, str]:
        """Return the scraper's settings for the storefront's chains served in a real chain's dialect."""
        listed: object = None
        # The directory is a shop page: now and then it answers 503, like the rest of the shop.
        for _ in range(DIRECTORY_TRIES):
            listed = (_get_json(f"{self.config.storefront_url}/v1/chains") or {}).get("chains")
            if isinstance(listed, list) or not self.storefront.running():
                break
            time.sleep(0.2)
        sites = [c for c in listed if c.get("dialect") in REAL_DIALECTS] if isinstance(listed, list) else []
        # The scraper runs the real Coles and Woolworths adapters against the world's chains.
        return {
            "SCRAPER_DIALECTS": json.dumps({site["chain"]: site["dialect"] for site in sites}),
            "SCRAPER_CHAIN_URLS": json.dumps(
                {site["chain"]: f"{self.config.storefront_url}{site['url']}" for site in sites}
            ),
        }

    def service_url(self, name: str) -> str:
        """Return a service's base URL."""
        return f"http://127.0.0.1:{self.config.service_port(name)}"

    def service_process(self, process: str) -> ServiceProcess:
        """Return how to launch a service's process (`grouping`, `grouping-2`...): port and environment."""
        name, replica = self.config.replica_of(process)
        prefix = name.upper()
        password = self._service_passwords()[name]
        dsn = self.postgres.dsn(database=self.config.database, user=name, password=password)
        port = self.config.replica_port(name, replica)
        env = {
            f"{prefix}_HTTP_PORT": str(port),
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": self.config.bootstrap_servers,
            # Tansu rejects idempotent producers; real Kafka (docker-compose) keeps them on.
            f"{prefix}_KAFKA_ENABLE_IDEMPOTENCE": "false",
            f"{prefix}_DATABASE_URL": dsn,
            f"{prefix}_LOG_FORMAT": "json",
            f"{prefix}_CONSUMER_SESSION_TIMEOUT_MS": str(LOCAL_CONSUMER_SESSION_TIMEOUT_MS),
        }
        if name == "scraper":
            env["SCRAPER_STOREFRONT_URL"] = self.config.storefront_url
            env["SCRAPER_INGEST_TOKEN"] = self.ingest_token
            env.update(self._chain_sites())
        if name == "grouping":
            # The local stack replays past simulated days (the demo's 16): their prices count.
            env["GROUPING_FRESHNESS_H"] = str(LOCAL_GROUPING_FRESHNESS_H)
        if name == "catalogue":
            # The web page's operators' views read the other services' HTTP APIs.
            others = ("scraper", "grouping", "substitutions", "bargains")
            env.update({f"CATALOGUE_{other.upper()}_URL": self.service_url(other) for other in others})
        return ServiceProcess(name=process, port=port, env=env, service=name)

    # --- up ---------------------------------------------------------------------------

    def up(self, report: Report = print, *, timeout_s: float = 120.0) -> list[ServiceProcess]:
        """Bring every component up; what already runs is left alone."""
        self.config.home.mkdir(parents=True, exist_ok=True)
        self._start_postgres(report)
        self._start_broker(report)
        created = asyncio.run(ensure_topics(self.config.bootstrap_servers))
        report(f"topics: {len(created)} created" if created else "topics: all present")
        asyncio.run(self.postgres.provision(database=self.config.database, roles=self._service_passwords()))
        report(f"database {self.config.database}: one role and schema per service")
        self._start_storefront(report)
        launched = [self._start_service(process, report) for process in self.services]
        self.config.save()
        self._wait_ready(launched, report, timeout_s)
        return launched

    def _start_postgres(self, report: Report) -> None:
        if self.postgres.running():
            report(f"postgres: already running on 127.0.0.1:{self.config.postgres_port}")
            return
        ensure_port_free(self.config.postgres_port, "PostgreSQL", "--postgres-port")
        if not self.postgres.initialised():
            report("postgres: initialising a new cluster")
            self.postgres.init()
        self.postgres.start()
        report(f"postgres: started on 127.0.0.1:{self.config.postgres_port}")

    def _start_broker(self, report: Report) -> None:
        if self.broker.process.running():
            report(f"broker: already running on {self.config.bootstrap_servers}")
            return
        ensure_port_free(self.config.broker_port, "broker", "--broker-port")
        self.broker.start()
        report(f"broker: started on {self.config.bootstrap_servers} (Tansu, memory storage)")

    def _start_storefront(self, report: Report) -> None:
        cfg = self.config
        if self.storefront.running():
            report(f"storefront: already running on {cfg.storefront_url}")
            return
        ensure_port_free(cfg.storefront_port, "storefront", "--storefront-port")
        argv = [sys.executable, "-m", "simulator", "--port", str(cfg.storefront_port)]
        argv += ["--seed", str(cfg.storefront_seed)]
        argv += ["--rate-limit-rps", str(cfg.shop_rate_limit_rps), "--error-rate", str(cfg.shop_error_rate)]
        if cfg.world_stores_per_chain:
            argv += ["--stores-per-chain", str(cfg.world_stores_per_chain)]
        if cfg.world_products_per_chain:
            argv += ["--products-per-chain", str(cfg.world_products_per_chain)]
        if cfg.catalog:
            argv += ["--catalog", str(cfg.catalog)]
        for dialect in cfg.storefront_dialects:
            argv += ["--dialect", dialect]
        self.storefront.start(argv)
        deadline = time.monotonic() + 60
        while _get_status(f"{cfg.storefront_url}/v1/chains") != 200:
            if not self.storefront.running() or time.monotonic() > deadline:
                raise StackError(f"storefront did not start:\n{tail(self.storefront.log_file)}")
            time.sleep(0.2)
        report(
            f"storefront: simulated shops on {cfg.storefront_url}"
            + (f" (names from {cfg.catalog})" if cfg.catalog else "")
        )

    def start_service(self, name: str, report: Report = print, *, timeout_s: float = 180.0) -> None:
        """Start one service process (after it stopped or was killed) and wait until it is ready.

        Its consumers rejoin their groups one after another, and a group whose old member
        was killed waits for that member's session to time out: this can take a minute.
        """
        try:
            self._wait_ready([self._start_service(name, report)], report, timeout_s / 2)
        except StackError as stuck:
            # The local broker now and then never completes a consumer group's join after a
            # restart (seen after SIGTERM); a fresh process joins anew.
            report(f"{name}: not ready after {timeout_s / 2:.0f} s, restarting it once: {str(stuck)[:200]}")
            self.services[name].stop(timeout=30)
            self._wait_ready([self._start_service(name, report)], report, timeout_s / 2)

    def _start_service(self, name: str, report: Report) -> ServiceProcess:
        launch = self.service_process(name)
        process = self.services[name]
        if process.running():
            report(f"{name}: already running on {launch.url}")
            return launch
        # A service killed a moment ago can hold its port until its last threads are gone.
        deadline = time.monotonic() + 10
        while port_in_use(launch.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        ensure_port_free(launch.port, f"{name} service", "--http-port-base")
        process.start([sys.executable, "-m", launch.service], env=launch.env)
        report(f"{name}: starting on {launch.url}")
        return launch

    def _wait_ready(self, launched: list[ServiceProcess], report: Report, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = {launch.name: launch for launch in launched}
        while waiting:
            for name, launch in list(waiting.items()):
                if not self.services[name].running():
                    raise StackError(f"{name} exited during start-up:\n{tail(self.services[name].log_file)}")
                if _get_status(f"{launch.url}/health/ready") == 200:
                    report(f"{name}: ready at {launch.url}")
                    del waiting[name]
            if waiting and time.monotonic() > deadline:
                name = next(iter(waiting))
                raise StackError(
                    f"{name} not ready after {timeout_s:.0f}s:\n{tail(self.services[name].log_file)}"
                )
            time.sleep(0.25)

    # --- down -------------------------------------------------------------------------

    def down(self, report: Report = print) -> None:
        """Stop the services (they drain and commit), then the broker, then PostgreSQL."""
        processes = dict(self.services)
        # Replicas of an earlier `up` with more of them than this config names.
        for pid_file in sorted((self.config.home / "run").glob("*-*.pid")):
            if pid_file.stem.partition("-")[0] in SERVICES and pid_file.stem not in processes:
                processes[pid_file.stem] = ManagedProcess(pid_file.stem, self.config.home)
        # Each drains on its own: stopped together, the stack is down in the time of the slowest.
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            stopped = list(pool.map(lambda process: process.stop(timeout=30), processes.values()))
        for name, was_running in zip(processes, stopped, strict=True):
            if was_running:
                report(f"{name}: stopped")
        if self.storefront.stop(timeout=10):
            report("storefront: stopped")
        if self.broker.process.stop(timeout=10):
            report("broker: stopped (its messages are gone: memory storage)")
        if self.postgres.stop():
            report("postgres: stopped (data kept in .pricestream/postgres)")

    # --- reset ------------------------------------------------------------------------

    def holds_data(self) -> bool:
        """Tell whether a service stored anything or a topic holds a message (on a stack that is up)."""
        if asyncio.run(self.postgres.holds_rows(database=self.config.database, schemas=SERVICES)):
            return True
        names = [name for spec in TOPICS for name in (spec.name, spec.dlq)]
        return asyncio.run(holds_messages(self.config.bootstrap_servers, names))

    def reset(self, report: Report = print) -> None:
        """Forget all the stack holds: stop its processes, drop every service's schema; `up` starts afresh.

        After `up`: empty topics (the broker keeps them in memory), schemas migrated anew, the
        storefront's world from its seed at day 0, no scrape run, no progress, no API token.
        """
        pid_files = (self.config.home / "run").glob("*.pid")
        processes = [ManagedProcess(pid.stem, self.config.home) for pid in pid_files]
        # Nothing they hold is kept, so nothing need drain: all stop at once.
        with ThreadPoolExecutor(max_workers=max(1, len(processes))) as pool:
            was_running = pool.map(_stop_quickly, processes)
            stopped = [p.name for p, was in zip(processes, was_running, strict=True) if was]
        report(f"stopped {', '.join(sorted(stopped))}" if stopped else "nothing was running")
        self._start_postgres(report)
        asyncio.run(self.postgres.drop_schemas(database=self.config.database, schemas=SERVICES))
        report(f"database {self.config.database}: every service's schema dropped")

    # --- status -----------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        """Return each component's health."""
        cfg = self.config
        broker_ok = port_in_use(cfg.broker_port) and asyncio.run(ping(cfg.bootstrap_servers))
        rows = [
            ComponentStatus(
                "broker", cfg.bootstrap_servers, broker_ok, "Tansu" if broker_ok else "not answering"
            ),
            ComponentStatus(
                "postgres",
                f"127.0.0.1:{cfg.postgres_port}",
                self.postgres.running() and port_in_use(cfg.postgres_port),
                f"database {cfg.database}",
            ),
        ]
        shop_ok = _get_status(f"{cfg.storefront_url}/v1/chains") == 200
        rows.append(ComponentStatus("storefront", cfg.storefront_url, shop_ok, "simulated shops"))
        for name in self.services:
            url = self.service_process(name).url
            body = _get_json(f"{url}/health/ready") or {}
            checks = body.get("checks")
            detail = (
                ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in checks.items())
                if isinstance(checks, dict)
                else "not answering"
            )
            rows.append(ComponentStatus(name, url, body.get("status") == "ready", detail))
        return rows

    def lag(self) -> list[tuple[str, str, int, int, int]]:
        """Return (group, topic, committed, end, lag) for every service's subscriptions."""
        groups = {name: [spec.name for spec in consumed_by(name)] for name in SERVICES}
        lags = asyncio.run(consumer_lag(self.config.bootstrap_servers, groups))
        return [(g.group, g.topic, g.committed, g.end, g.lag) for g in lags]

    def topic_messages(self, names: Sequence[str]) -> dict[str, int]:
        """Return how many messages each of these topics holds (topics missing are left out)."""
        infos = asyncio.run(describe_topics(self.config.bootstrap_servers, list(names)))
        return {info.name: info.messages for info in infos}

    def topic_events(self, name: str) -> list[tuple[int, Event]]:
        """Return every event a topic holds with its offset, each partition in order."""
        return asyncio.run(read_events(self.config.bootstrap_servers, name))


def _stop_quickly(process: ManagedProcess) -> bool:
    """Stop a process without waiting long for it to drain."""
    return process.stop(timeout=5)


def _get_status(url: str) -> int | None:
    try:
        return local_http().get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return None


def _get_json(url: str) -> dict[str, object] | None:
    try:
        response = local_http().get(url, timeout=3.0)
        body: dict[str, object] = response.json()
        return body
    except (httpx.HTTPError, ValueError):
        return None
