"""The OpenAPI document matches the app: same routes and methods, served verbatim, schemas well-formed."""

from __future__ import annotations

import re

import jsonschema

from tests.support.server import openapi, validate


def flask_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        path = path.replace("{job_id}", "{id}").replace("{label_id}", "{id}").replace("{upload_id}", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method.lower(), path))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, item in openapi()["paths"].items() for method in item if method != "parameters"}


def test_every_route_is_documented_and_vice_versa(client):
    assert flask_routes(client.application) == documented_routes()


def test_served_document_is_the_file(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200 and response.get_json() == openapi()


def test_component_schemas_are_valid_json_schema():
    document = openapi()
    assert document["openapi"].startswith("3.1")
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    text = str(document)
    for kind, name in re.findall(r"#/components/(\w+)/(\w+)", text):
        assert name in document["components"][kind], name


def test_security_applies_to_all_but_health_and_openapi():
    document = openapi()
    assert document["security"] == [{"bearerAuth": []}]
    public = {path for path, item in document["paths"].items() for op in item.values() if op.get("security") == []}
    assert public == {"/v1/health", "/v1/openapi.json"}


def test_error_body_shape_is_enforced_by_the_schema(client):
    response = client.get("/v1/labels/" + "c" * 32)
    body = validate(response, "GET", "/v1/labels/{id}")
    assert set(body["error"]) >= {"code", "message"}
    error_schema = dict(openapi()["components"]["schemas"]["Error"])
    try:
        jsonschema.validate({"error": {"code": "x"}}, error_schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("an error body without a message must not validate")


def test_choices_and_ranges_come_from_the_library():
    """One list of TTA choices and one pixel-size range everywhere: library, server validation, OpenAPI."""
    from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
    from hubseg.limits import MAX_REFERENCES, PIXEL_SIZE_MAX_UM, PIXEL_SIZE_MIN_UM
    from hubseg_server.request_options import TTA_CHOICES

    schemas = openapi()["components"]["schemas"]
    options = schemas["DetectionOptions"]["properties"]
    assert tuple(options["tta"]["enum"]) == TTA_MODES == tuple(TTA_CHOICES)
    assert tuple(options["stain_normalization"]["enum"]) == STAIN_NORMALIZATION_CHOICES
    assert (options["references"]["minimum"], options["references"]["maximum"]) == (0, MAX_REFERENCES)
    for schema in (schemas["DetectionRequest"], schemas["LabelSet"], schemas["BatchImage"]):
        size = schema["properties"]["pixel_size_um"]
        assert (size["minimum"], size["maximum"]) == (PIXEL_SIZE_MIN_UM, PIXEL_SIZE_MAX_UM)


def request_pixel_size_schemas(node, path=""):
    """Every ``pixel_size_um`` property of a request schema (responses only report values)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pixel_size_um" and isinstance(value, dict) and ("minimum" in value or "maximum" in value
                                                                       or "exclusiveMinimum" in value):
                yield f"{path}/{key}", value
            yield from request_pixel_size_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from request_pixel_size_schemas(value, f"{path}[{index}]")


def test_pixel_size_range_is_the_codes():
    from hubseg.limits import PIXEL_SIZE_MAX_UM, PIXEL_SIZE_MIN_UM

    schemas = openapi()["components"]["schemas"]
    found = dict(request_pixel_size_schemas(schemas))
    for name in ("DetectionRequest", "BatchImage", "TrainingRequest", "LabelSet"):
        assert any(f"/{name}/" in where for where in found), (name, sorted(found))
    for where, schema in found.items():
        assert schema.get("minimum") == PIXEL_SIZE_MIN_UM and schema.get("maximum") == PIXEL_SIZE_MAX_UM, where
        assert "exclusiveMinimum" not in schema, where
    text = f"{PIXEL_SIZE_MIN_UM:g}–{PIXEL_SIZE_MAX_UM:g} µm/px"
    for form in ("DetectionUpload", "UploadForm"):
        assert text in schemas[form]["properties"]["pixel_size_um"]["description"], form
