"""The names hubseg shares with QuPath and the extension, defined once: classes, metadata keys, measurement
names, review states and the limits a user meets.

``hubseg/data/vocabulary.json`` is a generated copy (``python -m hubseg.vocabulary`` rewrites it; a test fails
when it is stale) that the Java core's tests check its constants against, as they check the OpenAPI file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hubseg.limits import DEFAULT_MAX_TILES, PIXEL_SIZE_MAX_UM, PIXEL_SIZE_MIN_UM, PIXEL_SIZE_TESTED_UM

CLASS_GLOMERULUS = "Glomerulus"
CLASS_UNCERTAIN = "Glomerulus (uncertain)"  # detection's class for objects the gate sends to review
CLASS_REJECTED = "Rejected"  # an explicit negative in a label set
CLASS_REVIEWED_REGION = "Reviewed region"

META_MODEL = "hubseg.model"  # its presence marks a hubseg object
META_REVIEW = "hubseg.review"
META_ENERGY = "hubseg.energy"
META_SHAPE = "hubseg.shape"  # the fingerprint of the shape as proposed (the one edit check; see FINGERPRINT_*)
META_GEOMETRY = "hubseg.geometry"  # read only: the fingerprint older project batches wrote, never written now
META_REGION = "hubseg.region"  # on a user's annotation that detection ran in (value: model name)

MEASUREMENT_ENERGY = "hubseg energy"
MEASUREMENT_PROBABILITY = "hubseg probability"
MEASUREMENT_AREA = "Area µm^2"
MEASUREMENT_PERIMETER = "Perimeter µm"
MEASUREMENT_RANK = "hubseg rank"
MEASUREMENT_GATE = "hubseg energy gate"
MEASUREMENT_REVIEW_SCORE = "hubseg review score"
MEASUREMENT_AGREEMENT = "hubseg agreement"  # ensembles only: members' agreement, 0..1 (hubseg.agreement)
MEASUREMENT_REFERENCE_RANK = "hubseg reference rank"  # the image's most certain objects, 1 = most certain

# How META_SHAPE's value is computed (hubseg.project.review.shape_fingerprint, Java Geo.fingerprint):
# the UTF-8 text "<GeoJSON type>:" + the coordinate arrays as "[" + item + "," ... + "]", each number with
# FINGERPRINT_DECIMALS places rounded half-up on its exact binary value; its SHA-256, first 16 hex digits.
FINGERPRINT_DECIMALS = 2
FINGERPRINT_ROUNDING = "half_up"
FINGERPRINT_ENCODING = "UTF-8"
FINGERPRINT_HASH = "SHA-256"
FINGERPRINT_HEX_CHARS = 16

PENDING, ACCEPTED, REJECTED, CORRECTED = "pending", "accepted", "rejected", "corrected"
REVIEW_STATES = (PENDING, ACCEPTED, REJECTED, CORRECTED)

JSON_PATH = Path(__file__).resolve().parent / "data" / "vocabulary.json"


def as_dict() -> dict:
    """Everything above as one JSON-able document (the layout of ``vocabulary.json``)."""
    return {
        "format": "hubseg-vocabulary/1",
        "classes": {"glomerulus": CLASS_GLOMERULUS, "uncertain": CLASS_UNCERTAIN, "rejected": CLASS_REJECTED,
                    "reviewed_region": CLASS_REVIEWED_REGION},
        "metadata": {"model": META_MODEL, "review": META_REVIEW, "energy": META_ENERGY, "shape": META_SHAPE,
                     "geometry": META_GEOMETRY, "region": META_REGION},
        "measurements": {"energy": MEASUREMENT_ENERGY, "probability": MEASUREMENT_PROBABILITY, "area": MEASUREMENT_AREA,
                         "perimeter": MEASUREMENT_PERIMETER, "rank": MEASUREMENT_RANK, "gate": MEASUREMENT_GATE,
                         "review_score": MEASUREMENT_REVIEW_SCORE, "agreement": MEASUREMENT_AGREEMENT,
                         "reference_rank": MEASUREMENT_REFERENCE_RANK},
        "fingerprint": {"metadata": META_SHAPE, "decimals": FINGERPRINT_DECIMALS, "rounding": FINGERPRINT_ROUNDING,
                        "encoding": FINGERPRINT_ENCODING, "hash": FINGERPRINT_HASH,
                        "hex_chars": FINGERPRINT_HEX_CHARS},
        "review_states": list(REVIEW_STATES),
        "limits": {"pixel_size_min_um": PIXEL_SIZE_MIN_UM, "pixel_size_max_um": PIXEL_SIZE_MAX_UM,
                   "pixel_size_tested_um": list(PIXEL_SIZE_TESTED_UM), "default_max_tiles": DEFAULT_MAX_TILES},
    }


def render() -> str:
    """The text of ``vocabulary.json``."""
    return json.dumps(as_dict(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Rewrite ``hubseg/data/vocabulary.json`` from this module."""
    JSON_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {JSON_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
