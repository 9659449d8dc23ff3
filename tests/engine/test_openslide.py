"""The OpenSlide path, for real (openslide-bin ships the native library): a generic tiled TIFF and an
Aperio-style TIFF written here are read through OpenSlide and through tifffile, and agree on regions and
pixel size."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

openslide = pytest.importorskip(
    "openslide", reason="openslide-python + openslide-bin are in the test extra: pip install -e '.[test]'"
)

from hubseg.slide import open_slide  # noqa: E402
from hubseg.slide import OpenSlideSlide, TiffSlide  # noqa: E402

APERIO_MPP = 0.4990


def _pyramid(rgb: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [rgb]
    for _ in range(levels - 1):
        previous = out[-1]
        h, w = previous.shape[0] // 2 * 2, previous.shape[1] // 2 * 2
        out.append(previous[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def tissue(tissue_image):
    return tissue_image(900, 1100, disks=[(300, 250, 120), (800, 600, 150, 90)], seed=3)


@pytest.fixture(scope="module")
def generic_tiff(tmp_path_factory, tissue):
    """A plain tiled TIFF (no OME, no vendor description) with resolution tags: OpenSlide's generic-tiff."""
    path = tmp_path_factory.mktemp("os") / "generic.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(tissue, tile=(256, 256), photometric="rgb", compression="deflate",
                  resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER", metadata=None)
    return path


@pytest.fixture(scope="module")
def aperio_tiff(tmp_path_factory, tissue):
    """Aperio-style: ImageDescription starting with ``Aperio`` and carrying ``MPP =``, in the SVS page layout
    (tiled base, stripped thumbnail, further tiled levels), lossless so both readers see the same pixels."""
    path = tmp_path_factory.mktemp("os") / "aperio-style.svs"
    levels = _pyramid(tissue, 3)
    h, w = tissue.shape[:2]
    header = f"Aperio Image Library v12.0.16 \r\n{w}x{h} [0,0 {w}x{h}] (256x256)"
    with tifffile.TiffWriter(path) as tif:
        for index, level in enumerate(levels):
            lh, lw = level.shape[:2]
            tif.write(level, tile=(256, 256), photometric="rgb", compression="deflate", metadata=None,
                      description=f"{header} -> {lw}x{lh} RAW|AppMag = 20|MPP = {APERIO_MPP}|Filename = aperio-style")
            if index == 0:  # the thumbnail SVS files carry as their second page (stripped, not a pyramid level)
                thumb = levels[-1][::2, ::2]
                tif.write(thumb, photometric="rgb", metadata=None,
                          description=f"{header} -> {thumb.shape[1]}x{thumb.shape[0]} - |AppMag = 20|MPP = {APERIO_MPP}")
    return path


REGIONS = [(0, 0, 256, 256), (130, 77, 300, 211), (900, 700, 200, 200), (-20, -10, 100, 90), (1000, 850, 300, 300)]


@pytest.mark.parametrize("fixture", ["generic_tiff", "aperio_tiff"])
def test_openslide_and_tifffile_agree_on_regions_and_pixel_size(request, fixture):
    path = request.getfixturevalue(fixture)
    with OpenSlideSlide(path, None) as via_openslide, TiffSlide(path, None) as via_tifffile:
        assert via_openslide.format_name == "openslide"
        assert via_openslide.dimensions == via_tifffile.dimensions == (1100, 900)
        assert via_openslide.pixel_size_um == pytest.approx(via_tifffile.pixel_size_um, rel=1e-6)
        assert via_openslide.pixel_size_um == pytest.approx(0.5 if fixture == "generic_tiff" else APERIO_MPP, rel=1e-6)
        for region in REGIONS:  # level-0 reads, also across the border (white outside)
            np.testing.assert_array_equal(via_openslide.read_region(*region), via_tifffile.read_region(*region))
        if fixture == "aperio_tiff":  # same pyramid for both readers: scaled reads from the same level agree
            assert via_openslide.level_count == via_tifffile.level_count == 3
            for region in REGIONS:
                np.testing.assert_array_equal(via_openslide.read_region(*region, pixel_size_um=2.0),
                                              via_tifffile.read_region(*region, pixel_size_um=2.0))


def test_svs_suffix_goes_through_openslide_and_override_wins(aperio_tiff):
    with open_slide(aperio_tiff) as slide:
        assert isinstance(slide, OpenSlideSlide) and slide.pixel_size_um == pytest.approx(APERIO_MPP)
        assert slide.read_region(0, 0, 64, 64).shape == (64, 64, 3)
    with open_slide(aperio_tiff, pixel_size_um=0.25) as slide:
        assert slide.pixel_size_um == 0.25 and slide.pixel_size_from_file == pytest.approx(APERIO_MPP)
