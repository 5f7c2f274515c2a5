"""Check an alert file against the JSON Schema the project ships (``cec validate``).

The schema (``pipeline/schemas/alerts.schema.json``) is the alert-file contract of the README:
an RFC 7946 FeatureCollection without a ``crs`` member, Polygon/MultiPolygon features, every
property present with its type, range or allowed values. Two rules a schema cannot state are
checked too: ``first_detected`` is not after ``last_observed``, and ``alert_id`` is unique.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import jsonschema

from .errors import InputError
from .files import SAFE_NAME_PATTERN, is_safe_name

SCHEMA_NAME = "alerts.schema.json"


def load_schema() -> dict:
    """The alert-file JSON Schema shipped with the package."""
    return json.loads(resources.files("pipeline").joinpath("schemas", SCHEMA_NAME).read_text(encoding="utf-8"))


def _where(document: dict, path: list) -> str:
    """'feature 3 (id X), property class' for a JSON path into the collection."""
    if len(path) >= 2 and path[0] == "features" and isinstance(path[1], int):
        index = path[1]
        feature = document["features"][index]
        fid = None
        if isinstance(feature, dict):
            props = feature.get("properties")
            fid = feature.get("id") or (props.get("alert_id") if isinstance(props, dict) else None)
        where = f"feature {index}" + (f" (id {fid})" if fid else "")
        rest = [str(p) for p in path[2:]]
        if rest[:1] == ["properties"] and len(rest) >= 2:
            return f"{where}, property '{rest[1]}'"
        return f"{where}, {'.'.join(rest) or 'the feature'}"
    return ".".join(str(p) for p in path) or "the file"


def _non_finite(node: object, path: list) -> list[list]:
    """JSON paths of NaN and ±Infinity numbers (Python's json reads them; RFC 8259 has none)."""
    found = []
    stack = [(node, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            found.append(where)
        elif isinstance(value, dict):
            stack.extend((v, [*where, k]) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, [*where, i]) for i, v in enumerate(value))
    return sorted(found, key=lambda p: [str(x) for x in p])


def check_collection(document: object) -> list[str]:
    """Problems of a parsed alert file, one message per problem (empty list = valid)."""
    if not isinstance(document, dict):
        return [f"the file: is not a GeoJSON FeatureCollection (a JSON object); it holds a JSON "
                f"{_json_kind(document)}"]
    try:
        return _check_collection(document)
    except RecursionError:
        return ["the file: is nested too deeply to be an alert file"]


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(type(value), "value")


def _check_collection(document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema())
    problems = [f"{_where(document, path)}: {value!s} is not a JSON number (JSON has no NaN or Infinity)"
                for path in _non_finite(document, []) for value in [_at(document, path)]]
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "oneOf" and path[-1:] == ["geometry"]:
            message = "is not a valid Polygon or MultiPolygon"
        elif error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            path = [*path, missing]
            message = "is missing (required)"
        elif error.validator == "not" and not path:
            message = "has a 'crs' member (RFC 7946 forbids it; coordinates are WGS84 lon/lat)"
        else:
            message = error.message
        if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") \
                and isinstance(error.instance, float) and not math.isfinite(error.instance):
            continue  # reported above
        problems.append(f"{_where(document, path)}: {message}")
    if not isinstance(document.get("features"), list):
        return problems
    seen: dict[str, int] = {}
    for index, feature in enumerate(document["features"]):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            continue
        first, last = props.get("first_detected"), props.get("last_observed")
        if isinstance(first, str) and isinstance(last, str) and first > last:
            problems.append(f"{_where(document, ['features', index, 'properties', 'first_detected'])}: "
                            f"{first} is after last_observed {last}")
        aid = props.get("alert_id")
        if isinstance(aid, str) and not is_safe_name(aid) and re.search(SAFE_NAME_PATTERN, aid):
            # the schema's pattern lets a trailing line break through ('$'); a file name must not
            problems.append(f"{_where(document, ['features', index, 'properties', 'alert_id'])}: "
                            f"{aid!r} is not a safe id (it ends with a line break)")
        if isinstance(aid, str):
            if aid in seen:
                problems.append(f"{_where(document, ['features', index, 'properties', 'alert_id'])}: "
                                f"duplicate of feature {seen[aid]}")
            seen.setdefault(aid, index)
    return problems


def _at(document: object, path: list) -> object:
    for part in path:
        document = document[part]
    return document


def validate_file(path: Path) -> list[str]:
    """Problems of an alert file on disk; :class:`InputError` if it is missing or not JSON."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON: {err}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be an alert file") from None
    return check_collection(document)
