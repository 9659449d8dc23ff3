"""Tissue mask: glass is background, all-tissue regions stay whole, specks are ignored."""

from __future__ import annotations

import numpy as np

from hubseg.slide import ArraySlide
from hubseg.tissue import otsu_threshold, saturation, tissue_mask


def test_glass_and_tissue_are_separated(tissue_image):
    image = np.full((800, 800, 3), 248, np.uint8)
    image[200:600, 100:500] = tissue_image(400, 400)
    image[700:702, 700:702] = (120, 30, 90)  # a 2-px speck of dust
    mask, pixel_size = tissue_mask(ArraySlide(image, 1.0), 8.0, dilate_um=0)
    assert pixel_size == 8.0 and mask.shape == (100, 100)
    assert mask[30:70, 16:60].all()
    assert not mask[:20].any() and not mask[80:].any() and not mask[:, 70:].any()


def test_all_tissue_region_is_not_split_by_otsu(tissue_image):
    image = tissue_image(512, 512, disks=[(256, 256, 120, 60)])  # two tissue tones, no glass at all
    mask, _ = tissue_mask(ArraySlide(image, 1.0), 8.0, dilate_um=0)
    assert mask.all()


def test_all_glass_has_no_tissue():
    image = np.full((256, 256, 3), 245, np.uint8)
    image += np.random.default_rng(0).integers(0, 6, size=image.shape, dtype=np.uint8)
    mask, _ = tissue_mask(ArraySlide(image, 1.0), 8.0)
    assert not mask.any()


def test_helpers():
    values = np.concatenate([np.full(100, 0.1), np.full(100, 0.7)])
    assert 0.1 < otsu_threshold(values) < 0.7
    sat = saturation(np.array([[[255, 255, 255], [255, 0, 0], [10, 0, 0]]], np.uint8))
    np.testing.assert_allclose(sat[0], [0.0, 1.0, 0.0])
