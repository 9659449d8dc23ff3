"""Strict request validation: types, ranges, finite numbers, polygon validity; unknown fields rejected.

Malformed input (not JSON, wrong type, unknown or missing field, text that is not UTF-8) → 400
``bad_request``; well-formed but invalid values (out of range, invalid polygon, region outside the image)
→ 422 ``invalid_input``; JSON bodies over the byte or value budget → 413 before they are parsed. Every
error names the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Iterable

import flask

from hubseg_server.errors import ApiError, bad_request, invalid
from hubseg_server.gate import RequestGate, hold

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_COORDINATE = 1e9  # level-0 px; larger is certainly a mistake


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name} is not allowed")


# a JSON escape of a UTF-16 surrogate: the only way a lone surrogate gets into parsed JSON
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def loads_strict(text: str | bytes, field: str = "body") -> Any:
    """``json.loads`` that rejects NaN/Infinity, lone surrogates (400 naming the field), absurd nesting."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise bad_request(f"'{field}' is nested too deeply", field) from None
    except UnicodeDecodeError:
        raise bad_request(f"'{field}' is not UTF-8 text", field) from None
    except ValueError as error:
        raise bad_request(f"'{field}' is not valid JSON: {error}", field) from None
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if _SURROGATE_ESCAPE.search(raw):
        where = surrogate_field(value, "" if field == "body" else field)
        if where is not None:
            raise bad_request(
                f"'{where or field}' contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text; "
                "send valid Unicode", where or None,
            )
    return value


def surrogate_field(value: Any, path: str = "") -> str | None:
    """The field path of the first string (or key) in ``value`` that cannot be encoded as UTF-8, else None."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = join(where, key) if _encodable(key) else join(where, "<key>")
                if child_path.endswith("<key>"):
                    return child_path
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class JsonLimits:
    """What one JSON body may cost: bytes, and values (arrays + objects + commas, so object keys too, counted on
    the raw bytes before parsing: parsing costs ~60 bytes of RAM per value), plus the gate
    (:mod:`hubseg_server.gate`) in which a large body is read, parsed and validated to the end of its request."""

    max_bytes: int
    max_values: int
    gate: RequestGate = dc_field(default_factory=RequestGate)
    large: int = 1024 * 1024  # bodies above this hold a place in the gate

    def check(self, raw: bytes) -> None:
        values = raw.count(b"[") + raw.count(b"{") + raw.count(b",")
        if values > self.max_values:
            raise ApiError(
                413, "payload_too_large",
                f"the JSON body holds about {values} arrays/objects/elements, over the limit of {self.max_values}; "
                "send fewer or simpler polygons, or raise the server's limit (hubseg serve --max-json-values)",
            )


class StrictFormRequest(flask.Request):
    """A request whose multipart parser raises on a malformed body (werkzeug's default silently drops parts
    whose headers are not UTF-8, which then look like a missing ``image`` part)."""

    def make_form_data_parser(self):
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser


def _limits() -> JsonLimits | None:
    from flask import current_app

    return current_app.config.get("HUBSEG_JSON_LIMITS")


def read_json_bytes(request, limits: JsonLimits | None) -> bytes:
    """The raw body, refused (413) above ``limits.max_bytes`` without reading more than that."""
    if limits is None:
        return request.get_data(cache=False)
    too_large = ApiError(
        413, "payload_too_large",
        f"JSON request body too large (limit {limits.max_bytes} bytes); send fewer polygons per request or raise "
        "the server's limit (hubseg serve --max-json-mb)",
    )
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise too_large
    raw = request.stream.read(limits.max_bytes + 1)
    if len(raw) > limits.max_bytes:
        raise too_large
    return raw


def json_body(request) -> dict:
    """The request's JSON object body; 415 for another content type, 413 over the JSON budget (before
    parsing), 400 for anything but a JSON object."""
    mimetype = (request.mimetype or "").lower()
    if mimetype != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as JSON with 'Content-Type: application/json' (got {mimetype or 'no content type'})",
        )
    limits = _limits()
    if limits is not None and (request.content_length or 0) > limits.large:
        hold(limits.gate, "request")  # until the response is built: every walk over the body is bounded too
    raw = read_json_bytes(request, limits)
    if not raw:
        raise bad_request("the request body is empty; send a JSON object")
    if limits is not None:
        limits.check(raw)
        if len(raw) > limits.large:  # a chunked body has no Content-Length
            hold(limits.gate, "request")
    body = loads_strict(raw)
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {type_name(body)}")
    return body


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def check_object(value: Any, field: str, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
    """``value`` must be an object with only ``allowed`` keys and every ``required`` key."""
    label = field or "body"
    if not isinstance(value, dict):
        raise bad_request(f"'{label}' must be a JSON object, got {type_name(value)}", field or None)
    allowed = list(allowed)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise bad_request(
            f"unknown field {join(field, unknown[0])!r}; valid fields of '{label}': {', '.join(allowed)}",
            join(field, unknown[0]),
        )
    for key in required:
        if key not in value:
            raise bad_request(f"missing required field {join(field, key)!r}", join(field, key))
    return value


def number(value: Any, field: str, *, minimum=None, maximum=None, exclusive_minimum=None, exclusive_maximum=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"'{field}' must be a number, got {type_name(value)}", field)
    value = float(value)
    if not math.isfinite(value):
        raise invalid(f"'{field}' must be a finite number", field)
    _check_range(value, field, minimum, maximum, exclusive_minimum, exclusive_maximum)
    return value


def integer(value: Any, field: str, *, minimum=None, maximum=None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"'{field}' must be an integer, got {type_name(value)}", field)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise bad_request(f"'{field}' must be an integer, got {value!r}", field)
    value = int(value)
    _check_range(value, field, minimum, maximum, None, None)
    return value


def _check_range(value, field, minimum, maximum, exclusive_minimum, exclusive_maximum) -> None:
    if minimum is not None and value < minimum:
        raise invalid(f"'{field}' must be >= {minimum}, got {value}", field)
    if maximum is not None and value > maximum:
        raise invalid(f"'{field}' must be <= {maximum}, got {value}", field)
    if exclusive_minimum is not None and not value > exclusive_minimum:
        raise invalid(f"'{field}' must be > {exclusive_minimum}, got {value}", field)
    if exclusive_maximum is not None and not value < exclusive_maximum:
        raise invalid(f"'{field}' must be < {exclusive_maximum}, got {value}", field)


def string(value: Any, field: str, *, max_length: int = 1000, choices: Iterable[str] | None = None) -> str:
    if not isinstance(value, str):
        raise bad_request(f"'{field}' must be a string, got {type_name(value)}", field)
    if not _encodable(value):
        raise bad_request(f"'{field}' contains a lone UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode", field)
    if choices is not None:
        choices = list(choices)
        if value not in choices:
            raise invalid(f"'{field}' must be one of {', '.join(choices)}; got {value[:100]!r}", field)
    if not value or len(value) > max_length:
        raise invalid(f"'{field}' must be a non-empty string of at most {max_length} characters", field)
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"'{field}' must be true or false, got {type_name(value)}", field)
    return value


def model_name(value: Any, field: str, known: Iterable[str]) -> str:
    """A registered model's name (never a path: the registry would open paths)."""
    name = string(value, field, max_length=100)
    known = sorted(known)
    if not MODEL_NAME_PATTERN.match(name) or name not in known:
        raise ApiError(
            404, "not_found", f"unknown model {name[:100]!r} in '{field}'; valid names: {', '.join(known) or '(none)'}", field
        )
    return name


def object_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise bad_request(f"'{field}' must be an id of 32 lowercase hex characters", field)
    return value


# --- geometry ----------------------------------------------------------------------------------------
def region(value: Any, field: str = "region") -> tuple[int, int, int, int]:
    check_object(value, field, ("x", "y", "width", "height"), ("x", "y", "width", "height"))
    x = integer(value["x"], f"{field}.x", minimum=0, maximum=MAX_COORDINATE)
    y = integer(value["y"], f"{field}.y", minimum=0, maximum=MAX_COORDINATE)
    w = integer(value["width"], f"{field}.width", minimum=1, maximum=MAX_COORDINATE)
    h = integer(value["height"], f"{field}.height", minimum=1, maximum=MAX_COORDINATE)
    return (x, y, w, h)


def region_inside(reg: tuple[int, int, int, int], bounds: tuple[float, float, float, float], field: str) -> None:
    """``reg`` (x, y, w, h) must lie inside ``bounds`` (x0, y0, x1, y1), level-0 px."""
    x, y, w, h = reg
    x0, y0, x1, y1 = bounds
    if x < x0 or y < y0 or x + w > x1 or y + h > y1:
        raise invalid(
            f"'{field}' ({x}, {y}, {w}×{h}) is not inside the image, which covers x {x0:g}..{x1:g}, y {y0:g}..{y1:g} "
            "(level-0 px)",
            field,
        )


def _positions(value: Any, field: str, counter: list[int], max_vertices: int) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise bad_request(f"'{field}' must be an array of [x, y] positions", field)
    out = []
    for i, pos in enumerate(value):
        if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
            raise bad_request(f"'{field}[{i}]' must be an [x, y] position", f"{field}[{i}]")
        x = number(pos[0], f"{field}[{i}][0]", minimum=-MAX_COORDINATE, maximum=MAX_COORDINATE)
        y = number(pos[1], f"{field}[{i}][1]", minimum=-MAX_COORDINATE, maximum=MAX_COORDINATE)
        out.append((x, y))
    counter[0] += len(out)
    if counter[0] > max_vertices:
        raise ApiError(413, "payload_too_large", f"'{field}': more than {max_vertices} vertices in one request", field)
    if len(out) < 4:
        raise invalid(f"'{field}' must be a closed ring of at least 4 positions (first = last)", field)
    if out[0] != out[-1]:
        raise invalid(f"'{field}' must be closed: its first and last positions must be equal", field)
    return out


def _rings(value: Any, field: str, counter: list[int], max_vertices: int):
    if not isinstance(value, list) or not value:
        raise bad_request(f"'{field}' must be a non-empty array of linear rings", field)
    return [_positions(ring, f"{field}[{i}]", counter, max_vertices) for i, ring in enumerate(value)]


def area_geometry(value: Any, field: str, max_vertices: int = 2_000_000, counter: list[int] | None = None):
    """A GeoJSON Polygon/MultiPolygon (level-0 px) → valid, non-empty shapely geometry."""
    from shapely.geometry import MultiPolygon, Polygon
    from shapely.validation import explain_validity

    counter = counter if counter is not None else [0]
    check_object(value, field, ("type", "coordinates", "bbox"), ("type", "coordinates"))
    kind = value["type"]
    if kind == "Polygon":
        rings = _rings(value["coordinates"], f"{field}.coordinates", counter, max_vertices)
        geometry = Polygon(rings[0], rings[1:])
    elif kind == "MultiPolygon":
        polys = value["coordinates"]
        if not isinstance(polys, list) or not polys:
            raise bad_request(f"'{field}.coordinates' must be a non-empty array of polygons", f"{field}.coordinates")
        parts = []
        for i, poly in enumerate(polys):
            rings = _rings(poly, f"{field}.coordinates[{i}]", counter, max_vertices)
            parts.append(Polygon(rings[0], rings[1:]))
        geometry = MultiPolygon(parts)
    else:
        raise invalid(f"'{field}.type' must be Polygon or MultiPolygon, got {str(kind)[:50]!r}", f"{field}.type")
    if not geometry.is_valid:
        raise invalid(
            f"'{field}' is not a valid polygon ({explain_validity(geometry)}); fix self-intersections or overlaps",
            field,
        )
    if geometry.is_empty or not geometry.area > 0:
        raise invalid(f"'{field}' has zero area", field)
    return geometry


def feature_collection(value: Any, field: str, max_vertices: int, counter: list[int]) -> dict:
    """A GeoJSON FeatureCollection whose features have valid polygon (or point/line) geometries."""
    if not isinstance(value, dict):
        raise bad_request(f"'{field}' must be a GeoJSON FeatureCollection object", field)
    if value.get("type") != "FeatureCollection":
        raise invalid(f"'{field}.type' must be 'FeatureCollection'", f"{field}.type")
    features = value.get("features")
    if not isinstance(features, list):
        raise bad_request(f"'{field}.features' must be an array", f"{field}.features")
    for i, feature in enumerate(features):
        name = f"{field}.features[{i}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise bad_request(f"'{name}' must be a GeoJSON Feature object", name)
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise bad_request(f"'{name}.geometry' must be a GeoJSON geometry object", f"{name}.geometry")
        if geometry.get("type") in ("Polygon", "MultiPolygon"):
            area_geometry(
                {k: geometry[k] for k in ("type", "coordinates") if k in geometry}, f"{name}.geometry", max_vertices, counter
            )
        else:
            raise invalid(
                f"'{name}.geometry.type' must be Polygon or MultiPolygon (glomeruli are areas), got "
                f"{str(geometry.get('type'))[:50]!r}",
                f"{name}.geometry.type",
            )
        props = feature.get("properties", {})
        if props is not None and not isinstance(props, dict):
            raise bad_request(f"'{name}.properties' must be an object", f"{name}.properties")
    return value
