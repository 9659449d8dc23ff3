"""Metrics: Dice, one-to-one instance matching at IoU > 0.5, P/R/F1, AUROC, HuBMAP RLE."""

from __future__ import annotations

import numpy as np
import pytest

from hubseg.metrics import auroc, dice, f1, label_instances, match_instances, precision, recall, rle_decode, rle_encode


def test_dice():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    assert dice(a, b) == 1.0
    a[:5] = True
    assert dice(a, b) == 0.0
    b[:5, :5] = True
    assert dice(a, b) == pytest.approx(2 * 25 / 75)


def test_matching_is_one_to_one_at_iou_above_half():
    true = np.zeros((40, 40), int)
    true[0:10, 0:10] = 1
    true[20:30, 20:30] = 2
    true[0:10, 30:40] = 3  # missed
    pred = np.zeros((40, 40), int)
    pred[0:10, 0:9] = 5  # IoU 0.9 with 1
    pred[20:30, 20:25] = 6  # IoU 0.5 with 2: not > 0.5
    pred[20:30, 25:30] = 7  # the other half: also 0.5
    pred[35:40, 0:5] = 8  # FP
    m = match_instances(pred, true)
    assert (m.tp, m.fp, m.fn) == (1, 3, 2)
    assert list(m.pred_ids[m.pred_matched]) == [5]
    assert m.precision == pytest.approx(0.25) and m.recall == pytest.approx(1 / 3)
    assert m.f1 == pytest.approx(2 * 1 / (2 + 3 + 2))


def test_degenerate_counts():
    assert precision(0, 0, 0) == recall(0, 0, 0) == f1(0, 0, 0) == 1.0
    assert precision(0, 0, 3) == 0.0 and recall(0, 2, 0) == 0.0


def test_label_instances_drops_small_components():
    mask = np.zeros((20, 20), bool)
    mask[0:5, 0:5] = True
    mask[10, 10] = True
    labels = label_instances(mask, min_pixels=4)
    assert labels.max() == 1 and (labels > 0).sum() == 25


def test_auroc():
    assert auroc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auroc([0, 1], [2, 3]) == 0.0
    assert auroc([1, 2], [1, 2]) == pytest.approx(0.5)
    assert auroc([], [1]) is None
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 200), rng.normal(0, 1, 300)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(pos, neg) == pytest.approx(brute)


def test_rle_is_hubmap_column_major_one_indexed():
    mask = np.array([[0, 1, 1], [0, 1, 0]], bool)  # H=2, W=3
    # column-major flatten: [0,0, 1,1, 1,0] → run starting at 1-based position 3 of length 3
    assert rle_encode(mask) == "3 3"
    np.testing.assert_array_equal(rle_decode("3 3", (2, 3)), mask)
    rng = np.random.default_rng(1)
    random = rng.random((37, 53)) > 0.6
    np.testing.assert_array_equal(rle_decode(rle_encode(random), random.shape), random)
    assert rle_encode(np.zeros((4, 4), bool)) == ""
    with pytest.raises(ValueError):
        rle_decode("15 5", (3, 3))


def test_reported_precision_recall_f1_are_none_where_undefined():
    from hubseg.metrics import Counts, summarize

    assert summarize(0, 0, 0) == {"precision": None, "recall": None, "f1": None, "tp": 0, "fp": 0, "fn": 0}
    assert summarize(0, 0, 3)["precision"] is None and summarize(0, 0, 3)["recall"] == 0.0
    assert summarize(2, 1, 1, digits=4) == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "tp": 2, "fp": 1, "fn": 1}
    assert Counts(2, 1, 1).summary() == summarize(2, 1, 1)
