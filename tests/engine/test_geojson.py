"""QuPath GeoJSON: schema QuPath 0.5–0.7 reads, contract property names, round trip."""

from __future__ import annotations

import json
import uuid

import geojson
import pytest
from shapely.geometry import Polygon, box

from hubseg.errors import InvalidInputError
from hubseg.instances import DetectedObject
from hubseg.pipeline import DetectionOptions, detect
from hubseg.qupath_geojson import features_to_geometries, to_feature_collection
from hubseg.slide import ArraySlide

MEASUREMENTS = {"hubseg energy", "hubseg probability", "Area µm^2", "Perimeter µm", "hubseg rank"}


def _objects():
    ring = Polygon([(0, 0), (100, 0), (100, 80), (0, 80)], [[(20, 20), (40, 20), (40, 40), (20, 40)]])
    return [
        DetectedObject(ring, 0.8, 1.25, 1234.5, 400.0, rank=1, energy_gate=2.0, uncertain=True,
                       class_name="Glomerulus (uncertain)", class_color=(255, 140, 0)),
        DetectedObject(box(200.123, 300.456, 260.789, 350.0), 0.95, 3.5, 900.0, 120.0, rank=2, energy_gate=2.0),
    ]


def test_feature_schema_matches_what_qupath_reads():
    fc = to_feature_collection(_objects(), model_name="m-v1", properties={"count": 2})
    text = json.dumps(fc, ensure_ascii=False)
    parsed = geojson.loads(text)
    assert parsed.is_valid, parsed.errors()
    assert fc["type"] == "FeatureCollection" and fc["properties"] == {"count": 2}
    for feature in fc["features"]:
        assert feature["type"] == "Feature"
        assert str(uuid.UUID(feature["id"])) == feature["id"]
        props = feature["properties"]
        assert props["objectType"] == "annotation"
        assert set(props["classification"]) == {"name", "color"}
        assert len(props["classification"]["color"]) == 3 and all(isinstance(c, int) for c in props["classification"]["color"])
        assert props["isLocked"] is False
        assert isinstance(props["measurements"], dict)
        assert MEASUREMENTS | {"hubseg energy gate"} == set(props["measurements"])
        assert all(isinstance(v, (int, float)) for v in props["measurements"].values())
        assert set(props["metadata"]) == {"hubseg.model", "hubseg.review", "hubseg.energy"}
        assert all(isinstance(v, str) for v in props["metadata"].values())
        assert props["metadata"]["hubseg.review"] == "pending"
    first = fc["features"][0]
    assert first["geometry"]["type"] == "Polygon" and len(first["geometry"]["coordinates"]) == 2  # with its hole
    assert fc["features"][1]["geometry"]["coordinates"][0][0] in ([260.79, 300.46], [200.12, 300.46], [260.79, 350.0], [200.12, 350.0])


def test_detection_object_type_and_no_gate():
    objs = _objects()
    for o in objs:
        o.energy_gate = None
    fc = to_feature_collection(objs, object_type="detection")
    for feature in fc["features"]:
        assert feature["properties"]["objectType"] == "detection"
        assert set(feature["properties"]["measurements"]) == MEASUREMENTS
        assert "hubseg.model" not in feature["properties"]["metadata"]
    with pytest.raises(InvalidInputError, match="annotation, detection"):
        to_feature_collection(objs, object_type="cell")


def test_round_trip_geometries_classes_and_properties():
    objs = _objects()
    fc = to_feature_collection(objs, model_name="m-v1")
    back = features_to_geometries(json.dumps(fc))
    assert [name for _, name, _ in back] == ["Glomerulus (uncertain)", "Glomerulus"]
    for (geometry, _, props), obj in zip(back, objs):
        assert geometry.hausdorff_distance(obj.geometry) <= 0.0051  # rounded to 0.01 px
        assert props["measurements"]["hubseg rank"] == obj.rank
    # QuPath's own export variants: a bare list of features, derived classes as "names", no classification.
    qupath_list = [
        {"type": "Feature", "id": str(uuid.uuid4()), "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 0]]]},
         "properties": {"objectType": "annotation", "classification": {"names": ["Glomerulus", "Rejected"], "color": [1, 2, 3]}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"objectType": "annotation"}},
        {"type": "Feature", "geometry": None, "properties": {}},
    ]
    parsed = features_to_geometries(qupath_list)
    assert [name for _, name, _ in parsed] == ["Glomerulus: Rejected", None]
    with pytest.raises(InvalidInputError):
        features_to_geometries({"type": "Polygon"})


def test_pipeline_output_round_trips(tissue_image, threshold_model_factory):
    slide = ArraySlide(tissue_image(200, 300, disks=[(60, 60, 30, 40), (200, 120, 40, 80)]), 0.5, origin=(100, 100))
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    result = detect(slide, model, options=DetectionOptions(min_area_um2=50))
    fc = json.loads(json.dumps(result.to_feature_collection()))
    assert geojson.loads(json.dumps(fc)).is_valid
    props = fc["properties"]
    assert props["count"] == len(fc["features"]) == 2
    assert props["model"] == {"name": "threshold-test-v1", "version": 1}
    assert props["pixel_size_um"] == 0.5 and props["region"] == [100, 100, 300, 200]
    back = features_to_geometries(fc)
    for (geometry, _, _), obj in zip(back, result.objects):
        assert geometry.symmetric_difference(obj.geometry).area < 1.0
    ranks = [f["properties"]["measurements"]["hubseg rank"] for f in fc["features"]]
    assert ranks == [1, 2]
