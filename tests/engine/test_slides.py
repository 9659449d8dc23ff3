"""Slides: formats, pixel-size sources and errors, level choice, resampling, ArraySlide placement."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hubseg.errors import DependencyMissingError, MissingPixelSizeError, UnsupportedFormatError
from hubseg.slide import ArraySlide, open_slide


@pytest.fixture()
def gradient():
    """An image whose pixel values encode their position (easy to check reads)."""
    yy, xx = np.mgrid[:512, :768]
    return np.stack([(xx // 3) % 256, (yy // 2) % 256, ((xx + yy) // 5) % 256], axis=-1).astype(np.uint8)


def test_ome_tiff_pixel_size_levels_and_exact_level0_read(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25, ome=True, levels=3)
    with open_slide(path) as slide:
        assert slide.format_name == "ome-tiff"
        assert slide.pixel_size_um == pytest.approx(0.25)
        assert slide.dimensions == (768, 512)
        assert slide.level_count == 3
        assert slide.level_downsamples == pytest.approx([1.0, 2.0, 4.0])
        region = slide.read_region(100, 50, 200, 120, 0.25)
        np.testing.assert_array_equal(region, gradient[50:170, 100:300])


def test_resolution_tag_tiff_without_ome(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.tif", gradient, 0.5, ome=False, levels=2)
    with open_slide(path) as slide:
        assert slide.format_name == "tiff"
        assert slide.pixel_size_um == pytest.approx(0.5, rel=1e-6)


def test_imagej_calibration_in_micron(tmp_path, gradient):
    """ImageJ (and QuPath through it) writes ResolutionUnit NONE and the unit in its description."""
    import tifffile

    path = tmp_path / "imagej.tif"
    tifffile.imwrite(path, gradient, imagej=True, resolution=(1 / 0.4, 1 / 0.4), metadata={"unit": "micron"})
    with open_slide(path) as slide:
        assert slide.pixel_size_um == pytest.approx(0.4, rel=1e-6)


def test_imagej_tiff_without_unit_has_no_pixel_size(tmp_path, gradient):
    import tifffile

    path = tmp_path / "imagej-nounit.tif"
    tifffile.imwrite(path, gradient, imagej=True, resolution=(2.5, 2.5))
    with pytest.raises(MissingPixelSizeError):
        open_slide(path)


def test_aperio_mpp_in_description(tmp_path, tiff_writer, gradient):
    description = "Aperio Image Library v12.0.15\n768x512 [0,0 768x512] (256x256) JPEG/RGB Q=70|AppMag = 40|MPP = 0.2520"
    path = tiff_writer(tmp_path / "aperio.tif", gradient, None, ome=False, levels=1, description=description)
    with open_slide(path) as slide:
        assert slide.pixel_size_um == pytest.approx(0.252)


def test_missing_pixel_size_error_says_how_to_fix_and_override_works(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "nocal.tif", gradient, None, ome=False, levels=1)
    with pytest.raises(MissingPixelSizeError, match="--pixel-size"):
        open_slide(path)
    with open_slide(path, pixel_size_um=0.75) as slide:
        assert slide.pixel_size_um == 0.75


def test_override_beats_file_calibration(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25)
    with open_slide(path, pixel_size_um=0.5) as slide:
        assert slide.pixel_size_um == 0.5


def test_png_needs_pixel_size_and_reads_one_level(tmp_path, gradient):
    path = tmp_path / "tile.png"
    Image.fromarray(gradient).save(path)
    with pytest.raises(MissingPixelSizeError, match="--pixel-size"):
        open_slide(path)
    with open_slide(path, pixel_size_um=0.5) as slide:
        assert slide.level_count == 1
        np.testing.assert_array_equal(slide.read_region(0, 0, 768, 512), gradient)


def test_jpeg_opens(tmp_path, gradient):
    path = tmp_path / "tile.jpg"
    Image.fromarray(gradient).save(path, quality=95)
    with open_slide(path, pixel_size_um=0.5) as slide:
        assert slide.dimensions == (768, 512)


def test_unsupported_format_lists_supported_ones(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    with pytest.raises(UnsupportedFormatError, match="OME-TIFF") as info:
        open_slide(path, pixel_size_um=0.5)
    assert "PNG" in str(info.value)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(UnsupportedFormatError, match="supported formats"):
        open_slide(broken, pixel_size_um=0.5)


def test_openslide_formats_need_the_extra(tmp_path, monkeypatch):
    import hubseg.slide.opener as slide_module

    monkeypatch.setattr(slide_module, "_openslide_available", lambda: False)
    path = tmp_path / "slide.mrxs"
    path.write_bytes(b"x")
    with pytest.raises(DependencyMissingError, match=r"pip install hubseg\[openslide\]"):
        open_slide(path)


def test_best_level_is_finest_level_not_coarser_than_requested(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25, levels=3)
    with open_slide(path) as slide:
        assert slide.best_level(1.0) == 0
        assert slide.best_level(1.9) == 0
        assert slide.best_level(2.0) == 1
        assert slide.best_level(3.0) == 1
        assert slide.best_level(4.0) == 2
        assert slide.best_level(12.0) == 2


def test_read_region_at_coarse_level_matches_the_level(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25, levels=3)
    with open_slide(path) as slide:
        level2 = np.asarray(Image.fromarray(gradient).resize((384, 256), Image.Resampling.BOX).resize((192, 128), Image.Resampling.BOX))
        region = slide.read_region(64, 32, 512, 256, 1.0)  # exactly level 2
        assert region.shape == (64, 128, 3)
        np.testing.assert_array_equal(region, level2[8:72, 16:144])


def test_read_region_downsamples_and_upsamples(tmp_path, tiff_writer):
    flat = np.zeros((256, 256, 3), np.uint8)
    flat[:, :128] = (200, 40, 40)
    flat[:, 128:] = (40, 40, 200)
    path = tiff_writer(tmp_path / "halves.ome.tif", flat, 1.0, levels=2)
    with open_slide(path) as slide:
        down = slide.read_region(0, 0, 256, 256, 3.0)
        assert down.shape == (85, 85, 3)
        up = slide.read_region(0, 0, 256, 256, 0.5)  # input coarser than requested: upsampling
        assert up.shape == (512, 512, 3)
        np.testing.assert_array_equal(up[10, 10], (200, 40, 40))
        np.testing.assert_array_equal(up[10, 500], (40, 40, 200))
        # The edge between the halves stays at level-0 x = 128 at every scale.
        assert up[100, 254, 0] > 150 and up[100, 258, 2] > 150
        assert down[40, 40, 0] > 150 and down[40, 45, 2] > 150


def test_overlapping_resampled_reads_agree(tmp_path, tiff_writer, gradient):
    """Pixels depend on the global output grid only, so overlapping tiles see identical pixels."""
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.3, levels=2)
    with open_slide(path) as slide:
        d = 1.5 / 0.3
        whole = slide.read_scaled(10.0, 20.0, 120, 80, d)
        part = slide.read_scaled(10.0 + 37 * d, 20.0 + 11 * d, 50, 40, d)
        np.testing.assert_array_equal(part, whole[11:51, 37:87])


def test_outside_the_slide_is_white(tmp_path, tiff_writer, gradient):
    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.5, levels=1)
    with open_slide(path) as slide:
        region = slide.read_region(700, 480, 100, 50)
        assert (region[40:, :] == 255).all() and (region[:, 80:] == 255).all()
        np.testing.assert_array_equal(region[:32, :68], gradient[480:, 700:])


def test_array_slide_places_pixels_in_level0_frame(gradient):
    slide = ArraySlide(gradient[:, :, :3], 0.25, origin=(1000, 2000), downsample=4.0)
    assert slide.bounds == (1000, 2000, 768 * 4, 512 * 4)
    assert slide.level_downsamples == [4.0]
    region = slide.read_region(1000 + 40, 2000 + 80, 400, 200, 1.0)  # 1.0 µm/px = array resolution
    np.testing.assert_array_equal(region, gradient[20:70, 10:110])


def test_large_reads_are_split_into_bands_with_the_same_pixels(tmp_path, tiff_writer, gradient, monkeypatch):
    import hubseg.slide.base as slide_module

    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25, levels=1)
    with open_slide(path) as slide:
        whole = slide.read_region(3, 5, 700, 500, 0.6)
        monkeypatch.setattr(slide_module, "_MAX_SOURCE_PIXELS", 5000)  # force many small bands
        banded = slide.read_region(3, 5, 700, 500, 0.6)
    # Same pixels up to ±1 from fixed-point rounding in the resampler (band offsets are not exact in binary).
    assert banded.shape == whole.shape
    assert np.abs(banded.astype(int) - whole.astype(int)).max() <= 1
    assert (banded == whole).mean() > 0.98


def test_concurrent_reads_from_one_tiff_are_correct(tmp_path, tiff_writer, gradient):
    """The engine reads tiles from several threads (read_workers) through one TiffFile."""
    from concurrent.futures import ThreadPoolExecutor

    path = tiff_writer(tmp_path / "s.ome.tif", gradient, 0.25, levels=2, tile=32)
    with open_slide(path) as slide:
        coords = [(x * 37.5, y * 41.25) for x in range(8) for y in range(6)]
        sequential = [slide.read_scaled(x, y, 64, 64, 1.7) for x, y in coords]
        with ThreadPoolExecutor(4) as pool:
            parallel = list(pool.map(lambda c: slide.read_scaled(c[0], c[1], 64, 64, 1.7), coords))
    for a, b in zip(sequential, parallel):
        np.testing.assert_array_equal(a, b)


def test_main_image_is_the_largest_series_with_its_own_calibration(tmp_path):
    import tifffile

    path = tmp_path / "multi.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:  # a small "label" image first, then the slide
        tif.write(np.zeros((50, 60, 3), np.uint8), photometric="rgb", metadata={"axes": "YXS", "PhysicalSizeX": 5.0})
        tif.write(np.full((500, 600, 3), 9, np.uint8), photometric="rgb", tile=(64, 64), metadata={"axes": "YXS", "PhysicalSizeX": 0.5})
    with open_slide(path) as slide:
        assert slide.dimensions == (600, 500)
        assert slide.pixel_size_um == 0.5
        assert (slide.read_region(0, 0, 10, 10) == 9).all()


def test_fifo_is_refused_before_it_is_opened(tmp_path):
    """Opening a FIFO to sniff its header would block forever: stat first, refuse non-regular files."""
    import os

    from hubseg.errors import InvalidInputError

    fifo = tmp_path / "slide.tif"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        open_slide(fifo, 0.5)
