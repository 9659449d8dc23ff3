import copy
import json

import pytest

from hubseg.errors import InvalidInputError
from hubseg.labels import load_label_set, validate_label_set

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]]]}


def feature(name, geometry=SQUARE):
    return {"type": "Feature", "geometry": geometry, "properties": {"classification": {"name": name, "color": [0, 200, 0]}}}


VALID = {
    "format": "hubseg-labelset/1",
    "image": {"path": "/data/slide.ome.tif"},
    "pixel_size_um": 0.5,
    "regions": [SQUARE],
    "features": {"type": "FeatureCollection", "features": [feature("Glomerulus"), feature("Rejected"),
                                                           feature("Glomerulus (uncertain)")]},
    "model": "hubseg-pas-glomeruli-v1",
    "source": "qupath",
    "created": "2026-11-22T18:00:00Z",
}


def test_valid_label_set(tmp_path):
    labels = validate_label_set(copy.deepcopy(VALID))
    assert len(labels.positives) == 1 and len(labels.negatives) == 1 and len(labels.ignored) == 1
    assert labels.summary()["reviewed_area_um2"] == pytest.approx(2500.0)
    assert labels.to_dict() == VALID
    path = tmp_path / "l.json"
    path.write_text(json.dumps({**VALID, "image": {"path": "slide.tif"}}))
    assert load_label_set(path).image_path == str(tmp_path / "slide.tif")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(format="labelset/2"), "'format'"),
        (lambda d: d.update(image={"path": "a", "upload_id": "b"}), "'image'"),
        (lambda d: d.update(pixel_size_um=-1), "'pixel_size_um'"),
        (lambda d: d.update(pixel_size_um=True), "'pixel_size_um'"),
        (lambda d: d.update(regions=[]), "'regions'"),
        (lambda d: d["regions"].append({"type": "Point", "coordinates": [1, 2]}), "'regions\\[1\\].type'"),
        (lambda d: d["regions"].append({"type": "Polygon", "coordinates": [[[0, 0], [1, "x"], [0, 1], [0, 0]]]}),
         "'regions\\[1\\].coordinates\\[0\\]\\[1\\]'"),
        (lambda d: d["features"]["features"].append(feature("Tumour")),
         "'features.features\\[3\\].properties.classification.name'.*'Glomerulus'"),
        (lambda d: d["features"]["features"].append({"type": "Feature", "geometry": {"type": "LineString"}}),
         "features.features\\[3\\]"),
        (lambda d: d.update(features=[]), "'features'"),
        (lambda d: d.update(source="email"), "'source'.*qupath, project, api"),
        (lambda d: d.update(extra=1), "unknown label set key"),
    ],
)
def test_errors_name_the_field(mutate, field):
    data = copy.deepcopy(VALID)
    mutate(data)
    with pytest.raises(InvalidInputError, match=field):
        validate_label_set(data)


def test_upload_only_label_sets_need_the_server():
    labels = validate_label_set({**copy.deepcopy(VALID), "image": {"upload_id": "u1"}})
    with pytest.raises(InvalidInputError, match="only the server can resolve"):
        labels.resolve_image()
