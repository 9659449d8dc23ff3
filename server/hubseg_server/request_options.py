"""Detection options and the model named in a request, shared by the detection and batch routes."""

from __future__ import annotations

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.limits import MAX_REFERENCES

from hubseg_server.errors import invalid
from hubseg_server.validation import check_object, integer, model_name, number, string


TTA_CHOICES = TTA_MODES  # the one list (CLI, library, OpenAPI enum: tests/server/test_openapi.py checks it)


OBJECT_TYPES = ("annotation", "detection")


def parse_options(value, field: str = "options") -> dict:
    """Validated detection options (names as in the API; engine maps them to DetectionOptions)."""
    if value is None:
        return {}
    check_object(value, field, ("tta", "threshold", "object_type", "min_area_um2", "simplify_um", "stain_normalization",
                                "references"))
    out = {}
    if "tta" in value:
        out["tta"] = string(value["tta"], f"{field}.tta", choices=TTA_CHOICES)
    if "threshold" in value:
        out["threshold"] = number(value["threshold"], f"{field}.threshold", exclusive_minimum=0, exclusive_maximum=1)
    if "object_type" in value:
        out["object_type"] = string(value["object_type"], f"{field}.object_type", choices=OBJECT_TYPES)
    if "min_area_um2" in value:
        out["min_area_um2"] = number(value["min_area_um2"], f"{field}.min_area_um2", minimum=0, maximum=1e9)
    if "simplify_um" in value:
        out["simplify_um"] = number(value["simplify_um"], f"{field}.simplify_um", minimum=0, maximum=1e4)
    if "references" in value:
        out["references"] = integer(value["references"], f"{field}.references", minimum=0, maximum=MAX_REFERENCES)
    if "stain_normalization" in value:
        out["stain_normalization"] = string(
            value["stain_normalization"], f"{field}.stain_normalization", choices=STAIN_NORMALIZATION_CHOICES
        )
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


__all__ = ["OBJECT_TYPES", "TTA_CHOICES", "parse_options", "requested_model"]
