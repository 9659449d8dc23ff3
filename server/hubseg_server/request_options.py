"""Detection options and the model named in a request, shared by the detection and batch routes."""

from __future__ import annotations

from hubseg.choices import TTA_MODES
from hubseg.errors import InvalidInputError
from hubseg.pipeline import DetectionOptions

from hubseg_server.errors import invalid
from hubseg_server.validation import check_object, integer, model_name, number, string

TTA_CHOICES = TTA_MODES  # the one list (CLI, library, OpenAPI enum: tests/server/test_openapi.py checks it)
STRING_OPTIONS = ("tta", "object_type", "stain_normalization")
# Server-side ceilings on top of the library's rules (JSON numbers can be huge; these are never sensible).
NUMBER_OPTIONS = {"threshold": None, "min_area_um2": 1e9, "simplify_um": 1e4}
INTEGER_OPTIONS = ("references",)


def parse_options(value, field: str = "options") -> dict:
    """Detection options as the API names them (the ``DetectionOptions`` fields). JSON types are checked here;
    every value rule is ``DetectionOptions.validate()``'s (the library states each once), with 422s naming
    the field."""
    if value is None:
        return {}
    check_object(value, field, (*STRING_OPTIONS, *NUMBER_OPTIONS, *INTEGER_OPTIONS))
    out = {}
    for name in (*STRING_OPTIONS, *NUMBER_OPTIONS, *INTEGER_OPTIONS):
        if name not in value:
            continue
        where = f"{field}.{name}"
        if name in STRING_OPTIONS:
            out[name] = string(value[name], where)
        elif name in INTEGER_OPTIONS:
            out[name] = integer(value[name], where)
        else:
            out[name] = number(value[name], where, maximum=NUMBER_OPTIONS[name])
        try:
            DetectionOptions(**{name: out[name]}).validate()
        except InvalidInputError as error:
            raise invalid(f"'{where}': {error}", where) from None
    return out


def requested_model(value, svc) -> str:
    """The model a request names (validated against the registry), else the active one."""
    if value is None:
        active = svc.active_model()
        if active is None:
            raise invalid(
                "no model named and no active model registered; name one in 'model' "
                f"(valid: {', '.join(svc.model_names()) or 'none'}) or activate one with POST /v1/models/{{name}}/activate",
                "model",
            )
        return active
    return model_name(value, "model", svc.model_names())


__all__ = ["NUMBER_OPTIONS", "STRING_OPTIONS", "TTA_CHOICES", "parse_options", "requested_model"]
