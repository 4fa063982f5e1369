"""The local stack's layout: where state lives, which ports, which services."""

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import SERVICES
from pricestream.ports import free_port, free_port_range
from pricestream.processes import StackUsageError

# Each scraper process resumes every unfinished run at start: two would fetch the same pages.
SINGLE_REPLICA = ("scraper",)
MAX_REPLICAS = 8


def find_home(start: Path | None = None) -> Path:
    """Return `.pricestream/` in the project root (the folder holding `contracts/schemas`)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".pricestream").is_dir() or (folder / "contracts" / "schemas").is_dir():
            return folder / ".pricestream"
    return here / ".pricestream"


class StackConfig(BaseSettings):
    """Ports and state folder of the embedded stack, from `PRICESTREAM_*` variables or flags."""

    model_config = SettingsConfigDict(env_prefix="PRICESTREAM_", extra="ignore")

    home: Path = Field(default_factory=find_home)
    broker_port: int = Field(default=9092, ge=1, le=65535)
    postgres_port: int = Field(default=5433, ge=1, le=65535)
    http_port_base: int = Field(default=8081, ge=1, le=65535 - len(SERVICES))
    storefront_port: int = Field(default=8090, ge=1, le=65535)
    storefront_seed: int = 7
    catalog: Path | None = Field(default=None, description="au-grocery-2023 folder for real product names")
    world_stores_per_chain: int | None = Field(default=None, ge=1)
    world_products_per_chain: int | None = Field(default=None, ge=1)
    # The world's first chain speaks Coles' web dialect, the second Woolworths'; the scraper runs the
    # real adapters against them. Or CHAIN=DIALECT pairs (storefront, coles, woolworths).
    storefront_dialects: list[str] = Field(default_factory=lambda: ["auto"])
    # Like a real shop: throttles a client that hammers it and fails now and then.
    shop_rate_limit_rps: float = Field(default=500.0, ge=0)
    shop_error_rate: float = Field(default=0.005, ge=0, le=1)
    database: str = "pricestream"
    # Processes per service, one consumer group each (services not named run one).
    replicas: dict[str, int] = Field(default_factory=dict)
    # The extra replicas' HTTP ports follow one another from here (default: the base + 100).
    replica_port_base: int | None = Field(default=None, ge=1, le=65535 - MAX_REPLICAS * len(SERVICES))

    @field_validator("replicas")
    @classmethod
    def _known_services(cls, replicas: dict[str, int]) -> dict[str, int]:
        """Refuse unknown services, counts out of range, and a scaled scraper."""
        return checked_replicas(replicas)

    def replica_count(self, service: str) -> int:
        """Return how many processes of a service the stack runs."""
        return self.replicas.get(service, 1)

    @property
    def extra_replicas(self) -> int:
        """Return how many processes run besides each service's first."""
        return sum(self.replica_count(name) - 1 for name in SERVICES)

    def process_names(self, service: str) -> list[str]:
        """Return a service's process names: its own name, then `<name>-2`, `<name>-3`..."""
        return [service] + [f"{service}-{n}" for n in range(2, self.replica_count(service) + 1)]

    def replica_of(self, process: str) -> tuple[str, int]:
        """Return the service and replica number (from 1) of a process name."""
        service, _, number = process.partition("-")
        if service not in SERVICES or not (number == "" or number.isdigit()):
            raise ValueError(f"not a service process: {process!r}")
        return service, int(number or 1)

    def replica_port(self, service: str, replica: int) -> int:
        """Return the HTTP port of a service's replica (1 is the service's own port)."""
        if replica == 1:
            return self.service_port(service)
        before = sum(self.replica_count(name) - 1 for name in SERVICES[: SERVICES.index(service)])
        return (self.replica_port_base or self.http_port_base + 100) + before + replica - 2

    @property
    def storefront_url(self) -> str:
        """Return the simulated storefront's base URL."""
        return f"http://127.0.0.1:{self.storefront_port}"

    @property
    def bootstrap_servers(self) -> str:
        """Return the broker address services and clients use."""
        return f"127.0.0.1:{self.broker_port}"

    def service_port(self, service: str) -> int:
        """Return a service's HTTP port: scraper, grouping, substitutions, bargains in order."""
        return self.http_port_base + SERVICES.index(service)

    @property
    def state_file(self) -> Path:
        """Return the file that remembers the ports of the stack that is up."""
        return self.home / "stack.json"

    def save(self) -> None:
        """Remember this stack's ports so later commands find it."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(
            json.dumps(
                {
                    "broker_port": self.broker_port,
                    "postgres_port": self.postgres_port,
                    "http_port_base": self.http_port_base,
                    "storefront_port": self.storefront_port,
                    "storefront_seed": self.storefront_seed,
                    "catalog": str(self.catalog) if self.catalog else None,
                    "storefront_dialects": self.storefront_dialects,
                    "database": self.database,
                    "replicas": self.replicas,
                    "replica_port_base": self.replica_port_base,
                },
                indent=2,
            )
        )

    @classmethod
    def on_free_ports(cls, home: Path, replicas: dict[str, int] | None = None) -> "StackConfig":
        """Return a config whose every port is free now, with its state in `home` (bench, tests)."""
        config = cls(
            home=home,
            broker_port=free_port(),
            postgres_port=free_port(),
            http_port_base=free_port_range(len(SERVICES)),
            storefront_port=free_port(),
            replicas=replicas or {},
        )
        if config.extra_replicas:
            config.replica_port_base = free_port_range(config.extra_replicas)
        return config

    @classmethod
    def load(cls, home: Path | None = None, **overrides: object) -> "StackConfig":
        """Read the saved ports of the stack at `home`, with explicit overrides on top."""
        home = home or find_home()
        saved = json.loads((home / "stack.json").read_text()) if (home / "stack.json").exists() else {}
        explicit = {k: v for k, v in overrides.items() if v is not None}
        return cls(home=home, **{**saved, **explicit})


@dataclass(frozen=True, slots=True)
class ServiceProcess:
    """How to launch one service of the stack."""

    name: str
    port: int
    env: dict[str, str]
    service: str
    """The service it runs: `name` is `<service>-<n>` for its n-th replica."""

    @property
    def url(self) -> str:
        """Return the service's base URL."""
        return f"http://127.0.0.1:{self.port}"


def checked_replicas(replicas: dict[str, int]) -> dict[str, int]:
    """Return the counts above one; refuse unknown services, counts out of range, a scaled scraper."""
    for name, count in replicas.items():
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r} (one of {', '.join(SERVICES)})")
        if not 1 <= count <= MAX_REPLICAS:
            raise ValueError(f"{name}: between 1 and {MAX_REPLICAS} replicas, not {count}")
        if name in SINGLE_REPLICA and count != 1:
            raise ValueError(f"{name} runs as one replica (each would resume the same scrape runs)")
    return {name: count for name, count in replicas.items() if count > 1}


def parse_replicas(pairs: list[str] | None) -> dict[str, int] | None:
    """Parse `SERVICE=N` pairs (the `--replicas` option); None when there are none."""
    if not pairs:
        return None
    counts: dict[str, int] = {}
    for pair in pairs:
        name, sep, number = pair.partition("=")
        if not sep or not number.strip().isdigit():
            raise StackUsageError(f"--replicas takes SERVICE=N, such as grouping=2, not {pair!r}")
        counts[name.strip()] = int(number)
    try:
        return checked_replicas(counts)
    except ValueError as bad:
        raise StackUsageError(f"--replicas: {bad}") from None
