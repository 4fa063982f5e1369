"""JSON Schema export and the backward-compatibility check between two schemas."""

import json
from pathlib import Path
from typing import Any

from contracts.envelope import Event
from contracts.events import V1

JsonSchema = dict[str, Any]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples"


def schema_filename(event: type[Event]) -> str:
    """Name the file of an event version: `PricesScraped.v1.json`."""
    return f"{event.EVENT_TYPE}.v{event.SCHEMA_VERSION}.json"


def generate(event: type[Event]) -> JsonSchema:
    """Generate the JSON Schema a consumer validates this event against."""
    schema = event.model_json_schema(mode="validation")
    schema["$id"] = f"urn:pricestream:{event.EVENT_TYPE}:v{event.SCHEMA_VERSION}"
    return schema


def render(schema: JsonSchema) -> str:
    """Render a schema the way it is committed: sorted, indented, newline-terminated."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path = SCHEMA_DIR, events: tuple[type[Event], ...] = V1) -> list[Path]:
    """Write every event's schema into `directory`; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event in events:
        path = directory / schema_filename(event)
        path.write_text(render(generate(event)))
        written.append(path)
    return written


def stale(directory: Path = SCHEMA_DIR, events: tuple[type[Event], ...] = V1) -> list[str]:
    """List the schema files that are missing or differ from what the models generate."""
    problems = []
    for event in events:
        path = directory / schema_filename(event)
        if not path.exists():
            problems.append(f"{path.name}: missing")
        elif path.read_text() != render(generate(event)):
            problems.append(f"{path.name}: differs from the model")
    return problems


# --- compatibility -------------------------------------------------------------------
# A new schema is backward compatible with an old one when every message valid under
# the old schema is also valid under the new one: consumers on the new contract can read
# everything already on the topic. Unknown fields are forbidden, so removing a field
# breaks too.


def _deref(node: JsonSchema, root: JsonSchema) -> JsonSchema:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = root["$defs"][name]
    return node


def _types(node: JsonSchema) -> set[str]:
    kind = node.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


def _allowed_values(node: JsonSchema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def breaking_changes(old: JsonSchema, new: JsonSchema) -> list[str]:
    """List the ways `new` rejects messages that `old` accepted (empty: compatible)."""
    return _compare(old, new, old, new, "$")


def _compare(
    old: JsonSchema, new: JsonSchema, old_root: JsonSchema, new_root: JsonSchema, path: str
) -> list[str]:
    old, new = _deref(old, old_root), _deref(new, new_root)
    if "anyOf" in old:
        return [p for branch in old["anyOf"] for p in _compare(branch, new, old_root, new_root, path)]
    if "anyOf" in new:
        # Compatible if one alternative accepts the old schema; else report the closest one.
        attempts = [_compare(old, branch, old_root, new_root, path) for branch in new["anyOf"]]
        return min(attempts, key=len)

    problems: list[str] = []
    old_types, new_types = _types(old), _types(new)
    if new_types and not old_types <= new_types and not ({"integer"} <= old_types and "number" in new_types):
        problems.append(f"{path}: type {sorted(old_types)} became {sorted(new_types)}")
        return problems

    old_values, new_values = _allowed_values(old), _allowed_values(new)
    if new_values is not None:
        lost = [v for v in (old_values or []) if v not in new_values]
        if old_values is None:
            problems.append(f"{path}: now restricted to {new_values}")
        elif lost:
            problems.append(f"{path}: values {lost} no longer allowed")

    for key in ("minimum", "exclusiveMinimum", "minLength", "minItems"):
        if key in new and (key not in old or new[key] > old[key]):
            problems.append(f"{path}: {key} tightened to {new[key]}")
    for key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems"):
        if key in new and (key not in old or new[key] < old[key]):
            problems.append(f"{path}: {key} tightened to {new[key]}")
    for key in ("pattern", "format"):
        if key in new and new.get(key) != old.get(key):
            problems.append(f"{path}: {key} changed to {new[key]!r}")

    if "items" in old and "items" in new:
        problems += _compare(old["items"], new["items"], old_root, new_root, f"{path}[]")

    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            if new.get("additionalProperties") is False:
                problems.append(f"{path}.{name}: field removed")
            continue
        problems += _compare(old_prop, new_props[name], old_root, new_root, f"{path}.{name}")
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{path}.{name}: field is now required")
    return problems
