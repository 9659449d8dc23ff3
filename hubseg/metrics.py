"""Evaluation metrics: pixel Dice, instance matching at IoU > 0.5 (P/R/F1), energy AUROC, HuBMAP RLE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

IOU_THRESHOLD = 0.5


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Pixel Dice ``2|P∩T| / (|P|+|T|)``; 1.0 when both masks are empty."""
    pred = np.asarray(pred, bool)
    true = np.asarray(true, bool)
    denominator = int(pred.sum()) + int(true.sum())
    if denominator == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, true).sum()) / denominator


def label_instances(mask: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """4-connected components of a boolean mask as int32 labels; components below ``min_pixels`` dropped."""
    labels, count = ndi.label(np.asarray(mask, bool))
    if count and min_pixels > 1:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        small = sizes < min_pixels
        small[0] = False
        labels[small[labels]] = 0
        labels, count = ndi.label(labels > 0)
    return labels.astype(np.int32)


def iou_matrix(pred_labels: np.ndarray, true_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IoU[n_pred, n_true], pred ids, true ids) from two label images of the same shape."""
    pred_labels = np.asarray(pred_labels)
    true_labels = np.asarray(true_labels)
    if pred_labels.shape != true_labels.shape:
        raise ValueError(f"label images differ in shape: {pred_labels.shape} vs {true_labels.shape}")
    pred_ids = np.unique(pred_labels)
    pred_ids = pred_ids[pred_ids > 0]
    true_ids = np.unique(true_labels)
    true_ids = true_ids[true_ids > 0]
    if pred_ids.size == 0 or true_ids.size == 0:
        return np.zeros((pred_ids.size, true_ids.size)), pred_ids, true_ids
    p_index = np.zeros(int(pred_labels.max()) + 1, np.int64)
    p_index[pred_ids] = np.arange(1, pred_ids.size + 1)
    t_index = np.zeros(int(true_labels.max()) + 1, np.int64)
    t_index[true_ids] = np.arange(1, true_ids.size + 1)
    p = p_index[pred_labels.ravel()]
    t = t_index[true_labels.ravel()]
    joint = np.bincount(p * (true_ids.size + 1) + t, minlength=(pred_ids.size + 1) * (true_ids.size + 1))
    joint = joint.reshape(pred_ids.size + 1, true_ids.size + 1)
    intersection = joint[1:, 1:].astype(np.float64)
    pred_area = joint[1:, :].sum(axis=1).astype(np.float64)
    true_area = joint[:, 1:].sum(axis=0).astype(np.float64)
    union = pred_area[:, None] + true_area[None, :] - intersection
    return intersection / np.maximum(union, 1), pred_ids, true_ids


@dataclass
class Matching:
    """One-to-one matching of predicted and true objects at IoU > threshold."""

    tp: int
    fp: int
    fn: int
    pred_matched: np.ndarray  # bool per predicted id (in ``pred_ids`` order)
    pred_ids: np.ndarray
    true_ids: np.ndarray
    ious: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return precision(self.tp, self.fp, self.fn)

    @property
    def recall(self) -> float:
        return recall(self.tp, self.fp, self.fn)

    @property
    def f1(self) -> float:
        return f1(self.tp, self.fp, self.fn)


def match_instances(pred_labels: np.ndarray, true_labels: np.ndarray, iou_threshold: float = IOU_THRESHOLD) -> Matching:
    """Greedy one-to-one matching by descending IoU; pairs need IoU > ``iou_threshold``.

    Each predicted object matches at most one true object and vice versa; unmatched predictions are false
    positives, unmatched true objects false negatives. (At IoU > 0.5 the matching is unique anyway.)
    """
    ious, pred_ids, true_ids = iou_matrix(pred_labels, true_labels)
    pred_matched = np.zeros(pred_ids.size, bool)
    true_matched = np.zeros(true_ids.size, bool)
    matched_ious = []
    if ious.size:
        candidates = np.argwhere(ious > iou_threshold)
        order = np.argsort(-ious[candidates[:, 0], candidates[:, 1]], kind="stable")
        for i, j in candidates[order]:
            if not pred_matched[i] and not true_matched[j]:
                pred_matched[i] = True
                true_matched[j] = True
                matched_ious.append(float(ious[i, j]))
    tp = int(pred_matched.sum())
    return Matching(tp, int(pred_ids.size - tp), int(true_ids.size - tp), pred_matched, pred_ids, true_ids, matched_ious)


def precision(tp: int, fp: int, fn: int = 0) -> float:
    """tp / (tp + fp); with no predictions: 1.0 if there was nothing to find, else 0.0."""
    if tp + fp == 0:
        return 1.0 if fn == 0 else 0.0
    return tp / (tp + fp)


def recall(tp: int, fp: int, fn: int) -> float:
    """tp / (tp + fn); with nothing to find: 1.0 if nothing was predicted, else 0.0."""
    if tp + fn == 0:
        return 1.0 if fp == 0 else 0.0
    return tp / (tp + fn)


def f1(tp: int, fp: int, fn: int) -> float:
    """2tp / (2tp + fp + fn); 1.0 when everything is empty."""
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def auroc(scores_positive, scores_negative) -> float | None:
    """Area under the ROC curve (Mann–Whitney U with ties = ½); ``None`` if either group is empty.

    For energy: positives are true-positive objects, negatives false-positive ones; higher energy should
    mean "true", so AUROC near 1 means the energy separates them.
    """
    pos = np.asarray(list(scores_positive), np.float64)
    neg = np.asarray(list(scores_negative), np.float64)
    if pos.size == 0 or neg.size == 0:
        return None
    scores = np.concatenate([pos, neg])
    ranks = _average_ranks(scores)
    rank_sum = ranks[: pos.size].sum()
    u = rank_sum - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, np.float64)
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def summarize(tp: int, fp: int, fn: int, digits: int | None = None) -> dict[str, Any]:
    """Reported P/R/F1 with ``None`` where undefined (precision with no predicted objects, recall with no true
    ones, F1 with neither): a 0.0 or 1.0 there would read as a measurement. The one convention for every report
    (CLI, cards, benchmarks); :func:`precision`/:func:`recall`/:func:`f1` stay total for cut-off searches."""
    values = {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    }
    if digits is not None:
        values = {k: None if v is None else round(v, digits) for k, v in values.items()}
    return {**values, "tp": int(tp), "fp": int(fp), "fn": int(fn)}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: "Counts") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def summary(self) -> dict:
        """P/R/F1 and the counts (:func:`summarize`)."""
        return summarize(self.tp, self.fp, self.fn)


# ---- HuBMAP Kaggle run-length encoding -------------------------------------------------------------
def rle_encode(mask: np.ndarray) -> str:
    """HuBMAP RLE of a 2-D mask: ``"start length ..."``, 1-indexed, column-major (``mask.T.flatten()``)."""
    pixels = np.asarray(mask, bool).T.flatten()
    padded = np.concatenate([[False], pixels, [False]])
    changes = np.nonzero(padded[1:] != padded[:-1])[0] + 1
    changes[1::2] -= changes[::2]
    return " ".join(str(int(v)) for v in changes)


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rle_encode`; ``shape`` is the mask's ``(height, width)``. Returns a bool mask."""
    height, width = int(shape[0]), int(shape[1])
    flat = np.zeros(height * width, bool)
    values = [int(v) for v in str(rle).split()]
    if len(values) % 2:
        raise ValueError("RLE must hold pairs of 'start length'")
    for start, length in zip(values[0::2], values[1::2]):
        if start < 1 or length < 0 or start - 1 + length > flat.size:
            raise ValueError(f"RLE run {start} {length} lies outside a {height}×{width} mask")
        flat[start - 1:start - 1 + length] = True
    return flat.reshape(width, height).T
