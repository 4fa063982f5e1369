"""The compose stack and the image: one source of truth with `pricestream up`, checked without Docker."""

import re
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

import pricestream.stack
from bargains.settings import BargainsSettings
from catalogue.settings import CatalogueSettings
from contracts import SERVICES
from grouping.settings import GroupingSettings
from pricestream import compose
from pricestream.config import StackConfig, parse_replicas
from pricestream.processes import ManagedProcess, StackUsageError
from pricestream.stack import Stack
from scraper.settings import ScraperSettings
from servicekit.settings import ServiceSettings
from simulator.__main__ import main as storefront_main
from substitutions.settings import SubstitutionsSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "scraper": ScraperSettings,
    "grouping": GroupingSettings,
    "substitutions": SubstitutionsSettings,
    "bargains": BargainsSettings,
    "catalogue": CatalogueSettings,
}
ONE_SHOTS = ("topics", "postgres-init")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")
SAMPLE_SECRET = "sample-secret-0123456789"


def _config(home: Path) -> StackConfig:
    """Return the default stack config with its state in `home`."""
    return StackConfig.model_construct(home=home)


def _document() -> dict[str, Any]:
    """Return the committed compose file, parsed."""
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def _services() -> dict[str, dict[str, Any]]:
    """Return the committed compose file's services."""
    services: dict[str, dict[str, Any]] = _document()["services"]
    return services


def _resolve(value: str) -> str:
    """Return a value as compose would pass it, every secret set."""
    return INTERPOLATION.sub(SAMPLE_SECRET, value)


@dataclass(frozen=True, slots=True)
class Launch:
    """A process the local stack asked to start."""

    name: str
    argv: list[str]
    env: dict[str, str] | None


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Record what the local stack would launch instead of launching it."""
    recorded: list[Launch] = []

    def start(self: ManagedProcess, argv: Sequence[str], *, env: dict[str, str] | None = None) -> int:
        recorded.append(Launch(self.name, list(argv), env))
        return 0

    monkeypatch.setattr(ManagedProcess, "start", start)
    monkeypatch.setattr(pricestream.stack, "ensure_port_free", lambda *_: None)
    # A stack running on this machine must not make the test wait for its ports.
    monkeypatch.setattr(pricestream.stack, "port_in_use", lambda _: False)
    monkeypatch.setattr(pricestream.stack, "_get_status", lambda _: 200)
    return recorded


# --- one source of truth ------------------------------------------------------------------


def test_committed_compose_file_is_what_the_generator_renders() -> None:
    assert COMPOSE_FILE.read_text() == compose.render(), "run `python -m pricestream.compose render`"


def test_rendered_yaml_reads_back_as_the_document() -> None:
    assert yaml.safe_load(compose.render()) == compose.compose_document(compose.default_config())


def test_render_ignores_the_operators_port_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICESTREAM_BROKER_PORT", "19999")
    monkeypatch.setenv("PRICESTREAM_HTTP_PORT_BASE", "9181")
    assert compose.render() == COMPOSE_FILE.read_text()


def test_render_command_writes_and_checks_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".pricestream").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    with pytest.raises(SystemExit, match="stale"):
        compose.main(["render", "--check"])
    compose.main(["render"])
    compose.main(["render", "--check"])
    assert (tmp_path / "docker-compose.yml").read_text() == compose.render()
    assert "is current" in capsys.readouterr().out


def test_compose_runs_the_components_of_the_local_stack() -> None:
    expected = {"kafka", "postgres", "storefront", *ONE_SHOTS, *SERVICES, "prometheus", "grafana"}
    assert set(_services()) == expected


def test_infrastructure_is_published_on_the_local_stacks_ports(tmp_path: Path) -> None:
    config = _config(tmp_path)
    services = _services()
    assert services["kafka"]["ports"] == [f"127.0.0.1:{config.broker_port}:{config.broker_port}"]
    assert services["postgres"]["ports"] == [f"127.0.0.1:{config.postgres_port}:5432"]
    assert services["storefront"]["ports"] == [f"127.0.0.1:{config.storefront_port}:{config.storefront_port}"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"127.0.0.1:{config.broker_port}" in advertised, "host clients connect as to the local broker"
    assert config.bootstrap_servers == f"127.0.0.1:{config.broker_port}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_matches_what_pricestream_up_launches(
    name: str, tmp_path: Path, launches: list[Launch]
) -> None:
    stack = Stack(_config(tmp_path))
    local = stack.service_process(name)
    stack._start_service(name, report=lambda _: None)
    [launch] = launches
    service = _services()[name]
    prefix = name.upper()

    assert service["command"] == ["python", *launch.argv[1:]]
    assert service["ports"] == [f"127.0.0.1:{local.port}:{local.port}"]
    # Containers add their listening address and the healthcheck's port; the names are the same.
    environment: dict[str, str] = service["environment"]
    assert set(environment) == set(local.env) | {f"{prefix}_HTTP_HOST", "HEALTHCHECK_PORT"}
    assert (
        environment[f"{prefix}_HTTP_PORT"]
        == local.env[f"{prefix}_HTTP_PORT"]
        == environment["HEALTHCHECK_PORT"]
    )
    assert environment[f"{prefix}_LOG_FORMAT"] == local.env[f"{prefix}_LOG_FORMAT"]
    assert environment[f"{prefix}_KAFKA_ENABLE_IDEMPOTENCE"] == "true", (
        "real Kafka takes idempotent producers"
    )
    assert environment[f"{prefix}_HTTP_HOST"] == "0.0.0.0"
    compose_dsn = urlsplit(_resolve(environment[f"{prefix}_DATABASE_URL"]))
    local_dsn = urlsplit(local.env[f"{prefix}_DATABASE_URL"])
    assert (compose_dsn.username, compose_dsn.path) == (local_dsn.username, local_dsn.path)
    if name == "scraper":
        shop = urlsplit(environment["SCRAPER_STOREFRONT_URL"])
        assert (shop.hostname, shop.port) == (
            "storefront",
            urlsplit(local.env["SCRAPER_STOREFRONT_URL"]).port,
        )


def test_a_stack_on_other_ports_renders_those_ports(tmp_path: Path) -> None:
    config = StackConfig.model_construct(
        home=tmp_path, broker_port=19092, postgres_port=15433, http_port_base=18081, storefront_port=18090
    )
    services = compose.compose_document(config)["services"]
    stack = Stack(config)
    for name in SERVICES:
        port = stack.service_process(name).port
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert services["kafka"]["ports"] == ["127.0.0.1:19092:19092"]
    assert services["postgres"]["ports"] == ["127.0.0.1:15433:5432"]
    assert services["storefront"]["ports"] == ["127.0.0.1:18090:18090"]
    assert services["scraper"]["environment"]["SCRAPER_STOREFRONT_URL"] == "http://storefront:18090"


@pytest.mark.parametrize("name", SERVICES)
def test_service_settings_accept_the_compose_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_class = SETTINGS[name]
    prefix = f"{name.upper()}_"
    environment: dict[str, str] = _services()[name]["environment"]
    for variable, value in environment.items():
        if variable.startswith(prefix):
            assert variable.removeprefix(prefix).lower() in settings_class.model_fields, variable
        monkeypatch.setenv(variable, _resolve(value))

    settings = settings_class()
    assert settings.service_name == name
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", int(environment["HEALTHCHECK_PORT"]))
    assert settings.kafka_bootstrap_servers == compose.KAFKA_INTERNAL
    assert settings.kafka_enable_idempotence is True
    assert settings.log_format == "json"
    assert isinstance(settings.database_url, SecretStr)
    dsn = urlsplit(settings.database_url.get_secret_value())
    assert (dsn.username, dsn.password, dsn.hostname, dsn.port) == (name, SAMPLE_SECRET, "postgres", 5432)
    assert dsn.path == f"/{compose.default_config().database}"


def test_storefront_matches_what_pricestream_up_launches(tmp_path: Path, launches: list[Launch]) -> None:
    Stack(_config(tmp_path))._start_storefront(report=lambda _: None)
    [launch] = launches
    command: list[str] = _services()["storefront"]["command"]
    assert command[-2:] == ["--host", "0.0.0.0"]
    assert command[:-2] == ["python", *launch.argv[1:]]


def test_storefront_takes_every_option_compose_passes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        storefront_main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    flags = [part for part in _services()["storefront"]["command"] if part.startswith("--")]
    assert [flag for flag in flags if flag not in usage] == []


def test_one_shot_steps_parse_and_point_at_the_stacks_broker_and_database() -> None:
    services = _services()
    parser = compose.build_parser()
    topics = parser.parse_args(services["topics"]["command"][3:])
    provision = parser.parse_args(services["postgres-init"]["command"][3:])
    assert services["topics"]["command"][:3] == ["python", "-m", "pricestream.compose"]
    assert topics.command == "create-topics"
    assert topics.bootstrap_servers == services["grouping"]["environment"]["GROUPING_KAFKA_BOOTSTRAP_SERVERS"]
    assert provision.command == "provision"
    assert (provision.host, provision.port) == ("postgres", 5432)
    assert provision.database == services["postgres"]["environment"]["POSTGRES_DB"]
    assert set(services["postgres-init"]["environment"]) == set(compose.database_variables())


async def test_create_topics_retries_while_the_broker_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    async def ensure_topics(bootstrap_servers: str) -> list[str]:
        attempts.append(bootstrap_servers)
        if len(attempts) < 3:
            raise ConnectionError("not the controller yet")
        return ["prices.scraped.v1"]

    monkeypatch.setattr(compose, "ensure_topics", ensure_topics)
    assert await compose.create_topics("kafka:19092", retry_s=0) == ["prices.scraped.v1"]
    assert attempts == ["kafka:19092"] * 3


async def test_create_topics_gives_up_after_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ensure_topics(bootstrap_servers: str) -> list[str]:
        raise ConnectionError(bootstrap_servers)

    monkeypatch.setattr(compose, "ensure_topics", ensure_topics)
    with pytest.raises(ConnectionError):
        await compose.create_topics("kafka:19092", timeout_s=0, retry_s=0)


def test_env_command_prints_a_safe_value_for_every_secret(capsys: pytest.CaptureFixture[str]) -> None:
    compose.main(["env"])
    printed = [line.partition("=") for line in capsys.readouterr().out.splitlines()]
    lines = {variable: value for variable, _, value in printed}
    assert tuple(lines) == compose.required_variables()
    assert all(compose.read_secret(lines, variable) for variable in lines)
    assert len(set(lines.values())) == len(lines)


@pytest.mark.parametrize("value", ["", "short-secret", "has'quote-0123456789", "has@at-0123456789abc"])
def test_provision_refuses_secrets_that_would_break_a_dsn_or_ddl(value: str) -> None:
    with pytest.raises(SystemExit, match="POSTGRES_PASSWORD"):
        compose.read_secret({"POSTGRES_PASSWORD": value}, "POSTGRES_PASSWORD")


def test_server_postgres_provisions_through_its_own_address() -> None:
    server = compose.ServerPostgres("postgres", 5432, SAMPLE_SECRET)
    assert server.dsn() == f"postgresql://postgres:{SAMPLE_SECRET}@postgres:5432/postgres"
    assert server.dsn(database="pricestream", user="grouping", password="pw") == (
        "postgresql://grouping:pw@postgres:5432/pricestream"
    )


# --- the Compose specification --------------------------------------------------------------


def _check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate a compose file against the Compose specification's JSON Schema (vendored, offline)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_compose_file_validates_against_the_compose_specification(tmp_path: Path) -> None:
    result = _check_compose_spec(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr

    # The validator must reject what Compose rejects, or the check above proves nothing.
    broken = _document()
    broken["services"]["grouping"]["depends_on"]["kafka"]["condition"] = "service_ready"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _check_compose_spec(tmp_path / "broken.yml").returncode != 0


def test_every_service_has_a_pinned_image_and_existing_build() -> None:
    for name, service in _services().items():
        image: str = service["image"]
        assert re.fullmatch(r"[a-z0-9./_-]+:[A-Za-z0-9._-]+", image), f"{name}: image {image} has no tag"
        assert not image.endswith(":latest"), name
        if "build" in service:
            build = service["build"]
            dockerfile = ROOT / build["context"] / build["dockerfile"]
            assert dockerfile.is_file()
            assert build["target"] in _targets(parse_dockerfile(dockerfile.read_text())), name
            assert image == compose.image(build["target"])


def test_only_the_services_that_need_the_machine_learning_stack_run_the_full_image() -> None:
    targets = {
        name: service["build"]["target"] for name, service in _services().items() if "build" in service
    }
    assert {name for name, target in targets.items() if target != compose.SLIM_TARGET} == {"substitutions"}
    assert targets["substitutions"] == compose.FULL_TARGET
    assert compose.image(compose.FULL_TARGET) != compose.image(compose.SLIM_TARGET)


def test_dependencies_exist_and_their_conditions_can_be_met() -> None:
    services = _services()
    for name, service in services.items():
        for target, dependency in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = dependency["condition"]
            if condition == "service_healthy":
                # A compose healthcheck, or the image's HEALTHCHECK for the project's image.
                check = services[target].get("healthcheck", {})
                assert not check.get("disable"), (name, target)
                assert check or "build" in services[target], (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert "restart" not in services[target], f"{target} is a one-shot: a restart never completes"
    for name in SERVICES:
        assert set(services[name]["depends_on"]) >= {"kafka", "postgres", *ONE_SHOTS}


def test_healthchecks_are_well_formed() -> None:
    duration = re.compile(r"\d+(ms|s|m)")
    for name, service in _services().items():
        check = service.get("healthcheck")
        if check is None or check.get("disable"):
            assert name in ONE_SHOTS or "build" in service, f"{name} has no healthcheck"
            continue
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert len(check["test"]) > 1, name
        for key in ("interval", "timeout", "start_period"):
            assert duration.fullmatch(check[key]), (name, key, check[key])
        assert isinstance(check["retries"], int), name
        assert check["retries"] > 0, name


def test_ports_are_strings_bound_to_this_host_and_distinct() -> None:
    published = [port for service in _services().values() for port in service.get("ports", [])]
    assert all(isinstance(port, str) and re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port) for port in published)
    host_ports = Counter(port.split(":")[1] for port in published)
    assert [port for port, count in host_ports.items() if count > 1] == []


def test_every_variable_is_required_and_none_is_left_undefined() -> None:
    text = COMPOSE_FILE.read_text()
    found = [(match["name"], match["rest"]) for match in INTERPOLATION.finditer(text)]
    assert found, "the secrets come from variables"
    # `${VAR:?message}` fails loudly; `${VAR}` or `${VAR:-x}` would start with an empty or default secret.
    assert [name for name, rest in found if not rest.startswith(":?")] == []
    assert {name for name, _ in found} == set(compose.required_variables())
    assert "$" not in INTERPOLATION.sub("", text), "a bare $ would be interpolated too"


# --- the image ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction with its continued lines joined."""

    keyword: str
    arguments: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        # Docker drops comment and empty lines, also between the lines of one instruction.
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        keyword, _, arguments = " ".join([*pending, line]).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the last instruction continues past the end of the file"
    return instructions


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Return the build stages, each starting with its FROM."""
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
        stages[-1].append(instruction)
    return stages


def _stage_name(stage: list[Instruction]) -> str | None:
    """Return the name a stage's FROM gives it (`FROM base AS name`), if any."""
    words = [word for word in stage[0].arguments.split() if not word.startswith("--")]
    return words[2] if len(words) == 3 and words[1].upper() == "AS" else None


def _targets(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Return each image a Dockerfile builds (a stage no other stage builds on or copies from).

    A target's instructions are its own after those of the stages it is built on, so what it
    inherits (USER, HEALTHCHECK, CMD, ENV) counts.
    """
    stages = _stages(instructions)
    named = {name: stage for stage in stages if (name := _stage_name(stage))}
    used = {_base(stage) for stage in stages} | set(_copied_from(instructions))
    return {
        _stage_name(stage) or "default": _effective(stage, named)
        for stage in stages
        if _stage_name(stage) not in used
    }


def _base(stage: list[Instruction]) -> str:
    """Return the image or stage a stage starts from."""
    return next(word for word in stage[0].arguments.split() if not word.startswith("--"))


def _effective(stage: list[Instruction], named: dict[str, list[Instruction]]) -> list[Instruction]:
    """Return a stage's instructions after those of the stages it is built on."""
    base = _base(stage)
    return [*_effective(named[base], named), *stage] if base in named else stage


def _copied_from(instructions: list[Instruction]) -> list[str]:
    """Return the stages these instructions copy files from (`COPY --from=stage`)."""
    return [
        word.removeprefix("--from=")
        for instruction in instructions
        if instruction.keyword == "COPY"
        for word in instruction.arguments.split()
        if word.startswith("--from=")
    ]


def _env(stage: list[Instruction]) -> dict[str, str]:
    """Return the variables a stage's ENV instructions set (key=value form)."""
    variables: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.arguments):
                key, equals, value = item.partition("=")
                assert equals, f"line {instruction.line}: use ENV key=value"
                variables[key] = value
    return variables


DOCKERFILES = sorted(
    path
    for path in ROOT.rglob("Dockerfile*")
    if not {".venv", ".pricestream", ".git"} & set(path.relative_to(ROOT).parts)
)
SLIM_PYTHON = re.compile(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")


def test_the_repository_has_a_dockerfile() -> None:
    assert ROOT / "Dockerfile" in DOCKERFILES


def test_parser_joins_continuations_and_drops_comments() -> None:
    text = "# syntax=docker/dockerfile:1\nFROM python:3.11-slim\nRUN a \\\n    # note\n    && b\nUSER app\n"
    assert parse_dockerfile(text) == [
        Instruction("FROM", "python:3.11-slim", 2),
        Instruction("RUN", "a && b", 3),
        Instruction("USER", "app", 6),
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_dockerfile_follows_the_image_rules(dockerfile: Path) -> None:
    instructions = parse_dockerfile(dockerfile.read_text())
    stages = _stages(instructions)
    names: set[str] = set()
    for stage in stages:
        base, *alias = [word for word in stage[0].arguments.split() if not word.startswith("--")]
        assert base in names or SLIM_PYTHON.fullmatch(base), f"FROM {base}: a slim Python 3.11 image"
        assert "latest" not in base
        if alias:
            assert alias[0].upper() == "AS"
            names.add(alias[1])
    assert "ADD" not in [instruction.keyword for instruction in instructions], "COPY, not ADD"
    targets = _targets(instructions)
    assert targets
    for target in targets.values():
        _check_image(target)

    installs = [i.arguments for i in instructions if i.keyword == "RUN" and "pip install" in i.arguments]
    assert installs
    assert all("--no-cache-dir" in run for run in installs), "pip leaves no cache in a layer"


def _check_image(final: list[Instruction]) -> None:
    """Check what one image runs: a non-root user, a health check, the model offline."""
    keywords = [instruction.keyword for instruction in final]
    starts = [i for i, keyword in enumerate(keywords) if keyword in {"CMD", "ENTRYPOINT"}]
    users = [i for i, keyword in enumerate(keywords) if keyword == "USER"]
    assert starts, "the image says what it runs"
    assert users, "the image sets a USER"
    assert users[-1] < starts[0], "USER is set before CMD/ENTRYPOINT"
    user = final[users[-1]].arguments.split(":")[0]
    assert user not in {"root", "0"}, "the image runs as a non-root user"

    [healthcheck] = [instruction for instruction in final if instruction.keyword == "HEALTHCHECK"]
    assert "/health/ready" in healthcheck.arguments
    assert "HEALTHCHECK_PORT" in healthcheck.arguments
    assert _env(final).get("HF_HUB_OFFLINE") == "1", "the model is baked in: never ask the hub"


def _image_runs(target: str) -> str:
    """Return the RUN instructions that build a target's venv (the stage it copies it from), joined."""
    instructions = parse_dockerfile((ROOT / "Dockerfile").read_text())
    named = {name: stage for stage in _stages(instructions) if (name := _stage_name(stage))}
    [source] = _copied_from(_targets(instructions)[target])
    return " ".join(i.arguments for i in _effective(named[source], named) if i.keyword == "RUN")


@pytest.mark.parametrize(
    ("target", "lock", "with_substitutions"),
    [(compose.SLIM_TARGET, "runtime.lock", False), (compose.FULL_TARGET, "ml.lock", True)],
)
def test_each_image_installs_its_packages_and_their_hashed_lock(
    target: str, lock: str, with_substitutions: bool
) -> None:
    makefile = (ROOT / "Makefile").read_text()
    packages = re.search(r"^PACKAGES := (.+)$", makefile, flags=re.MULTILINE)
    assert packages
    runs = _image_runs(target)
    # The tests' and benchmarks' support package is no part of what runs.
    runtime = [p for p in packages[1].split() if p != "testsupport"]
    expected = [p for p in runtime if with_substitutions or p != "services/substitutions"]
    assert [p for p in expected if f"./{p} " not in f"{runs} "] == []
    assert "./testsupport" not in runs
    assert ("./services/substitutions" in runs) is with_substitutions
    assert "--require-hashes" in runs
    assert f"-r requirements/{lock}" in runs
    assert "--no-deps" in runs, "nothing beyond the lock"
    assert "pip check" in runs


def test_the_full_image_takes_torchs_cpu_build_of_the_lock_from_its_index() -> None:
    lock = (ROOT / "requirements" / "ml.lock").read_text()
    assert re.search(r"^torch==[0-9.]+\+cpu \\$", lock, flags=re.MULTILINE), "the lock pins torch's CPU build"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in _image_runs(compose.FULL_TARGET)
    assert "download.pytorch.org" not in _image_runs(compose.SLIM_TARGET)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")
    }
    assert {".venv", ".pricestream", ".env", "bench-results", "**/__pycache__", ".git"} <= ignored


def test_docker_guide_names_every_secret() -> None:
    guide = (ROOT / "docs" / "docker.md").read_text()
    assert [variable for variable in compose.required_variables() if variable not in guide] == []
    assert "python -m pricestream.compose env" in guide


# --- replicas -----------------------------------------------------------------------------


def test_replicas_of_a_service_launch_in_its_group_each_on_a_port_of_its_own(
    tmp_path: Path, launches: list[Launch]
) -> None:
    config = StackConfig(home=tmp_path, replicas={"grouping": 3, "bargains": 2, "catalogue": 1})
    stack = Stack(config)
    assert list(stack.services) == [
        "scraper",
        "grouping",
        "grouping-2",
        "grouping-3",
        "substitutions",
        "bargains",
        "bargains-2",
        "catalogue",
    ]
    for process in stack.services:
        stack._start_service(process, report=lambda _: None)
    by_process = {launch.name: launch for launch in launches}
    assert by_process["grouping-3"].argv[1:] == ["-m", "grouping"]
    env = by_process["bargains-2"].env or {}
    # The same role and service name, so the same schema and consumer group; a port of its own.
    assert env["BARGAINS_DATABASE_URL"] == stack.service_process("bargains").env["BARGAINS_DATABASE_URL"]
    ports = [stack.service_process(process).port for process in stack.services]
    assert len(set(ports)) == len(ports)
    assert config.storefront_port not in ports
    assert stack.service_process("grouping-2").port == config.http_port_base + 100


def test_replicas_are_remembered_with_the_stacks_ports(tmp_path: Path) -> None:
    StackConfig(home=tmp_path, replicas={"bargains": 2}, replica_port_base=30000).save()
    loaded = StackConfig.load(tmp_path)
    assert loaded.process_names("bargains") == ["bargains", "bargains-2"]
    assert loaded.replica_port("bargains", 2) == 30000
    assert StackConfig.load(tmp_path, replicas={}).process_names("bargains") == ["bargains"]


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        (["grouping"], "SERVICE=N"),
        (["grouping=two"], "SERVICE=N"),
        (["pricing=2"], "unknown service 'pricing'"),
        (["scraper=2"], "scraper runs as one replica"),
        (["bargains=0"], "between 1 and 8"),
        (["bargains=9"], "between 1 and 8"),
    ],
)
def test_bad_replica_counts_are_refused_clearly(pairs: list[str], error: str) -> None:
    with pytest.raises(StackUsageError, match=error):
        parse_replicas(pairs)


def test_replica_counts_of_one_are_the_default() -> None:
    assert parse_replicas(None) is None
    assert parse_replicas(["grouping=2", "bargains=1"]) == {"grouping": 2}


def test_compose_runs_replicas_of_a_service_without_a_host_port(tmp_path: Path) -> None:
    output = tmp_path / "docker-compose.replicas.yml"
    compose.main(["render", "--replicas", "grouping=2", "--replicas", "bargains=3", "--output", str(output)])
    services = yaml.safe_load(output.read_text())["services"]
    assert services["grouping"]["deploy"] == {"replicas": 2}
    assert services["bargains"]["deploy"] == {"replicas": 3}
    assert "ports" not in services["grouping"]
    assert services["catalogue"]["ports"] == _services()["catalogue"]["ports"]
    assert "deploy" not in services["catalogue"]
    # The catalogue reaches a scaled service by its name on the compose network.
    assert services["catalogue"]["environment"]["CATALOGUE_GROUPING_URL"].startswith("http://grouping:")
    with pytest.raises(SystemExit, match="needs --output"):
        compose.main(["render", "--replicas", "grouping=2"])
    with pytest.raises(SystemExit, match="scraper runs as one replica"):
        compose.main(["render", "--replicas", "scraper=2", "--output", str(output)])


def test_kafka_and_postgres_keep_their_data_on_named_volumes() -> None:
    kafka, postgres = _services()["kafka"], _services()["postgres"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dirs}" in kafka["volumes"]
    assert any(v.startswith("postgres-data:") for v in postgres["volumes"])
    assert {"kafka-data", "postgres-data"} <= set(_document()["volumes"])
