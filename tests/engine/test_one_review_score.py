"""One review score everywhere: review order, ``#N`` labels, overlay colours and legend follow the review score
where objects have one, else energy; ``#1`` is drawn in the most-uncertain colour."""

from __future__ import annotations

import numpy as np
from shapely.geometry import box

from hubseg.instances import DetectedObject, rank_objects, review_values
from hubseg.overlay import energy_color, legend_text, render_overlay_image
from hubseg.pipeline import DetectionResult
from hubseg.slide import ArraySlide

# (x0, energy, review score): energy order and review-score order disagree on purpose
SQUARES = [(20, 0.5, 0.9), (120, 3.0, 0.1), (220, 1.5, 0.5)]


def _result(with_scores: bool) -> DetectionResult:
    objects = [DetectedObject(geometry=box(x0, 40, x0 + 60, 100), mean_probability=0.9, mean_energy=energy,
                              area_um2=3600.0, perimeter_um=240.0, review_score=score if with_scores else None)
               for x0, energy, score in SQUARES]
    return DetectionResult(objects=rank_objects(objects), model_name="m", model_version=1, region=(0, 0, 300, 140),
                           pixel_size_um=1.0, model_pixel_size_um=1.0, threshold=0.5, energy_gate=None,
                           tiles_total=1, tiles_skipped=0)


def _outline_colour(image, obj) -> tuple[int, int, int]:
    x0, y0, _, y1 = (int(v) for v in obj.geometry.bounds)
    return tuple(int(c) for c in np.asarray(image)[(y0 + y1) // 2, x0][:3])


def test_rank_one_is_drawn_in_the_most_uncertain_colour_with_review_scores():
    slide = ArraySlide(np.full((140, 300, 3), 235, np.uint8), 1.0)
    for with_scores, first_x in ((True, 120), (False, 20)):
        result = _result(with_scores)
        name, values = review_values(result.objects)
        assert name == ("review score" if with_scores else "energy")
        first = result.objects[0]
        assert first.rank == 1 and int(first.geometry.bounds[0]) == first_x  # lowest score (else energy) first
        image = render_overlay_image(slide, result, max_size=300)
        low, high = min(values), max(values)
        assert _outline_colour(image, first) == energy_color(low, low, high) == (230, 0, 30)  # red: review first
        last = max(result.objects, key=lambda o: o.rank)
        assert _outline_colour(image, last) == energy_color(high, low, high)  # green: review last
        legend = legend_text(result)
        assert legend.startswith(f"{name} {low:.2f} (red, review first) to {high:.2f} (green)")


def test_review_table_order_matches_ranks():
    from hubseg.cli.demo import review_table

    result = _result(True)
    lines = review_table(result).splitlines()[2:]
    scores = [float(line.split()[2]) for line in lines]
    assert scores == sorted(scores) == [0.1, 0.5, 0.9]
    assert [o.rank for o in result.objects] == [1, 2, 3]
