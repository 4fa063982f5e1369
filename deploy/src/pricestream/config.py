"""The local stack's layout: where state lives, which ports, which services."""

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import SERVICES
from pricestream.ports import free_port, free_port_range


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
                },
                indent=2,
            )
        )

    @classmethod
    def on_free_ports(cls, home: Path) -> "StackConfig":
        """Return a config whose every port is free now, with its state in `home` (bench, tests)."""
        return cls(
            home=home,
            broker_port=free_port(),
            postgres_port=free_port(),
            http_port_base=free_port_range(len(SERVICES)),
            storefront_port=free_port(),
        )

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

    @property
    def url(self) -> str:
        """Return the service's base URL."""
        return f"http://127.0.0.1:{self.port}"
