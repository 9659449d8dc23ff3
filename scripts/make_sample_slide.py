#!/usr/bin/env python
"""Build the shipped sample slide: a 3×2 mosaic of AIDPATH PAS tiles as a pyramidal OME-TIFF.

    .venv/bin/python scripts/make_sample_slide.py [--data ../shared/data/pas-glomeruli-aidpath] [--out hubseg/data/sample]

Writes ``aidpath-pas-sample.ome.tif`` (tiled 256, JPEG, 2 sub-resolutions, PhysicalSizeX = 0.4942 µm),
``aidpath-pas-sample.mask.png`` (the tiles' glomerulus masks, same mosaic, 1 bit) and ``ATTRIBUTION.md``.
The tiles are not neighbours on the original slide: the mosaic shows seams, which is fine for a demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "pas-glomeruli-aidpath"
DEFAULT_OUT = REPO / "hubseg" / "data" / "sample"
PIXEL_SIZE_UM = 0.4942
# 3 columns × 2 rows; chosen for variety: single large, pairs, small and mid-size glomeruli.
TILES = [["10164", "10177", "10183"], ["10224", "10063", "10169"]]
NAME = "aidpath-pas-sample"

ATTRIBUTION = """# Sample slide: attribution

`{name}.ome.tif` is a mosaic of six 1024 × 1024 PAS tiles ({tiles}) placed 3 × 2 into one pyramidal
OME-TIFF (tiled 256 px, JPEG quality {quality}, sub-resolutions 1/2 and 1/4, PhysicalSizeX = {ps} µm) by
`scripts/make_sample_slide.py`. `{name}.mask.png` holds the tiles' glomerulus masks in the same layout.
The tiles are not neighbours on the original slide, so the mosaic shows seams.

Source (licence **CC BY 4.0**, https://creativecommons.org/licenses/by/4.0/):

- "Data for glomeruli characterization in histopathological images", Bueno, Gonzalez-Lopez,
  Garcia-Rojo, Laurinavicius (2020), Mendeley Data, v3, doi:10.17632/k7nvtgn2x6.3.
- PAS-stained human kidney needle biopsies, 4 µm paraffin sections, Leica Aperio ScanScope CS at 20×
  (0.4942 µm/px).
- Tiled to 1024 × 1024 PNGs as the Kaggle set "glomeruli-hubmap-external-1024x1024"; these tiles come
  from the "mini_test" folder of sarah-antillia/TensorFlow-FlexUNet-Tiled-Image-Segmentation-Glomeruli
  (Apache-2.0).
- Related paper: Bueno et al., "Glomerulosclerosis identification in whole slide images using semantic
  segmentation", Computer Methods and Programs in Biomedicine 184 (2020) 105273.

Changes: tiles rearranged into a mosaic, re-encoded as JPEG, pyramid levels added. The same 24 AIDPATH
tiles may be part of the default model's training data, so the demo shows what the output looks like;
it is not an independent accuracy measurement (use `hubseg evaluate` on your own slides for that).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()

    rows = []
    mask_rows = []
    for row in TILES:
        images, masks = [], []
        for stem in row:
            images.append(np.asarray(Image.open(args.data / "images" / f"{stem}.png").convert("RGB")))
            mask = np.asarray(Image.open(args.data / "masks" / f"{stem}.png").convert("RGB"))
            masks.append(mask.max(axis=-1) > 127)
        rows.append(np.concatenate(images, axis=1))
        mask_rows.append(np.concatenate(masks, axis=1))
    mosaic = np.ascontiguousarray(np.concatenate(rows, axis=0))
    mask = np.concatenate(mask_rows, axis=0)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{NAME}.ome.tif"
    levels = [mosaic]
    for _ in range(2):
        previous = Image.fromarray(levels[-1])
        levels.append(np.asarray(previous.resize((previous.width // 2, previous.height // 2), Image.Resampling.BOX)))
    resolution = (1e4 / PIXEL_SIZE_UM, 1e4 / PIXEL_SIZE_UM)
    common = dict(tile=(256, 256), photometric="rgb", compression="jpeg", compressionargs={"level": args.quality})
    with tifffile.TiffWriter(path, bigtiff=False, ome=True) as tif:
        tif.write(
            levels[0],
            subifds=len(levels) - 1,
            resolution=resolution,
            resolutionunit="CENTIMETER",
            metadata={
                "axes": "YXS",
                "PhysicalSizeX": PIXEL_SIZE_UM, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": PIXEL_SIZE_UM, "PhysicalSizeYUnit": "µm",
                "Name": "AIDPATH PAS sample (CC BY 4.0)",
            },
            **common,
        )
        for index, level in enumerate(levels[1:], start=1):
            factor = 2**index
            tif.write(
                level, subfiletype=1,
                resolution=(resolution[0] / factor, resolution[1] / factor), resolutionunit="CENTIMETER",
                **common,
            )
    Image.fromarray(mask).convert("1").save(args.out / f"{NAME}.mask.png", optimize=True)
    tiles = ", ".join(stem for row in TILES for stem in row)
    (args.out / "ATTRIBUTION.md").write_text(
        ATTRIBUTION.format(name=NAME, tiles=tiles, quality=args.quality, ps=PIXEL_SIZE_UM), encoding="utf-8"
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), {mosaic.shape[1]}×{mosaic.shape[0]} px, {len(levels)} levels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
