"""One bit-depth rule (hubseg.pixels) for slides read from disk, uploads and training images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hubseg.pixels import decode_rgb8, full_scale, read_rgb8, to_uint8


@pytest.mark.parametrize("values, dtype, expected", [
    ([0, 128, 255], np.uint8, [0, 128, 255]),  # 8-bit: unchanged
    ([0, 200], np.uint16, [0, 200]),  # 8-bit data in a 16-bit container: unchanged
    ([0, 4095], np.uint16, [0, 255]),  # a 12-bit camera fills the 8-bit range
    ([30000], np.uint16, [233]),  # 15 bits used: 30000 / 32767, not clipped to white
    ([65535, 0], np.uint16, [255, 0]),
    ([0.0, 0.5, 1.0], np.float32, [0, 128, 255]),  # floats in 0..1
    ([np.nan, -3.0, 1.0], np.float32, [0, 0, 255]),
    ([-5, 100], np.int16, [0, 100]),
])
def test_the_rule(values, dtype, expected):
    assert to_uint8(np.array(values, dtype)).tolist() == expected


def test_full_scale_is_the_bit_depth_in_use():
    assert [full_scale(v) for v in (1, 255, 256, 4095, 4096, 65535)] == [255, 255, 511, 4095, 8191, 65535]
    assert full_scale(0.7, floating=True) == 1.0 and full_scale(300.0, floating=True) == 511


def test_16_bit_grey_png_slide_keeps_its_data(tmp_path):
    from hubseg.slide import open_slide

    grey = np.full((32, 48), 30000, np.uint16)
    grey[8:16, 8:16] = 6000
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    slide = open_slide(tmp_path / "grey16.png", pixel_size_um=0.5)
    rgb = slide.read_region(0, 0, 48, 32)
    assert rgb[0, 0].tolist() == [233, 233, 233] and rgb[10, 10].tolist() == [47, 47, 47]


def test_training_tiles_uploads_and_slides_agree(tmp_path):
    """The same 16-bit RGB pixels read as a slide, an upload and a training tile give the same uint8."""
    import imagecodecs
    import tifffile

    from hubseg.slide import open_slide
    from hubseg.training.sources import ImageFolderSource

    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, (64, 64, 3), dtype=np.uint16)  # 12-bit data
    tifffile.imwrite(tmp_path / "tile.tif", image, photometric="rgb", resolution=(2e4, 2e4),
                     resolutionunit="CENTIMETER")
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    (tmp_path / "set" / "images" / "a.png").write_bytes(imagecodecs.png_encode(image))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "set" / "masks" / "a.png")
    expected = (image.astype(np.float64) * 255 / 4095).round().astype(np.uint8)
    slide = open_slide(tmp_path / "tile.tif")
    assert np.array_equal(slide.read_region(0, 0, 64, 64), expected)
    assert np.array_equal(decode_rgb8((tmp_path / "tile.tif").read_bytes()), expected)
    assert np.array_equal(read_rgb8(tmp_path / "set" / "images" / "a.png"), expected)
    loaded = ImageFolderSource(tmp_path / "set", pixel_size_um=1.0).load(1.0)
    assert np.array_equal(loaded[0].rgb, expected)
