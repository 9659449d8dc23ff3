"""``hubseg detect``: detect glomeruli in a slide (or a region of it) and write QuPath GeoJSON (+ overlay PNG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.cli.checks import check_detection_flags, check_distinct, check_output_file, pixel_size_option
from hubseg.errors import InvalidInputError
from hubseg.limits import MAX_REFERENCES, check_references
from hubseg.paths import read_json_file

DEFAULT_REVIEW_ROWS = 10


OVERLAY_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # = hubseg.overlay.OVERLAY_FORMATS (kept import-light)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --data-dir, --tta, --threshold, --stain-normalization...: shared by detect, evaluate and demo."""
    parser.add_argument("--model", metavar="NAME|PATH", help="model name or path to a model folder/card.json (default: the active model)")
    parser.add_argument("--device", default="auto", metavar="D", help="auto|cpu|cuda|mps (default: auto)")
    parser.add_argument("--data-dir", metavar="DIR", help="hubseg data directory (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
    parser.add_argument("--tta", choices=TTA_MODES, default="flips",
                        help="flip test-time augmentation: none = 1 model pass, h = + horizontal flip, flips = + vertical "
                        "flip (default, 3 passes), all = + both flips (4 passes)")
    parser.add_argument("--threshold", type=float, metavar="P", help="probability threshold (default: the model card's)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="tiles per model call (default: 8)")
    parser.add_argument("--min-area", type=float, metavar="UM2", help="drop objects smaller than this many µm² (default: 1000, about a 36 µm disc)")
    parser.add_argument("--stain-normalization", choices=STAIN_NORMALIZATION_CHOICES, default="model",
                        help="per-tile stain normalisation: model = the model card's setting (default), none, macenko, reinhard")


def load_model(args):
    """The LoadedModel named by ``--model`` (default the active one) on ``--device``."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.paths import data_dir

    registry = ModelRegistry(data_dir(getattr(args, "data_dir", None)))
    return registry.load(getattr(args, "model", None), device=getattr(args, "device", "auto") or "auto")


def detection_options(args, **extra):
    from hubseg.pipeline import DetectionOptions

    check_detection_flags(args)
    extra.setdefault("stain_normalization", getattr(args, "stain_normalization", None) or "model")
    options = DetectionOptions(tta=args.tta, threshold=args.threshold, batch_size=args.batch_size, **extra)
    if getattr(args, "min_area", None) is not None:
        options.min_area_um2 = args.min_area
    return options


class ProgressBar:
    """tqdm progress on stderr driven by the engine's ``progress(done, total, message)`` callback."""

    def __init__(self, description: str, enabled: bool = True, unit: str = "tile"):
        self.description = description
        self.unit = unit
        self.enabled = enabled
        self._bar = None

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.description, unit=self.unit, file=sys.stderr, leave=False)
        self._bar.n = done
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="detect glomeruli in a slide and write QuPath GeoJSON",
        description="Detect glomeruli in SLIDE (or --region of it) and write a QuPath-importable GeoJSON "
        "FeatureCollection in level-0 pixel coordinates; objects are ordered for review (most uncertain first).",
    )
    parser.add_argument("slide", metavar="SLIDE", help="OME-TIFF / tiled TIFF / PNG / JPEG (SVS, NDPI, MRXS with hubseg[openslide])")
    parser.add_argument("--region", metavar="X,Y,W,H", help="level-0 region to analyse (default: the whole slide)")
    parser.add_argument("--geometry", metavar="GEOJSON", help="file with a GeoJSON Polygon/MultiPolygon (or Feature) to restrict detection to")
    parser.add_argument("--pixel-size", type=float, metavar="UM", help="level-0 pixel size in µm (overrides the file's calibration)")
    add_model_arguments(parser)
    parser.add_argument("--object-type", choices=("annotation", "detection"), default="annotation", help="QuPath object type (default: annotation)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.geojson",
                        help="GeoJSON file to write (its folder must exist: hubseg never creates folders for -o)")
    parser.add_argument("--overlay", metavar="OUT.png",
                        help="also write a downscaled overlay picture with outlines coloured by energy; the suffix picks "
                        f"the format ({', '.join(sorted(OVERLAY_SUFFIXES))})")
    parser.add_argument("--review", type=int, default=DEFAULT_REVIEW_ROWS, metavar="N",
                        help=f"print the first N rows of the review list, most uncertain first (default: {DEFAULT_REVIEW_ROWS}; 0: none)")
    parser.add_argument("--references", type=int, default=0, metavar="N",
                        help="mark the N most certain objects (highest review score, else energy; never uncertain ones) "
                        "with the measurement 'hubseg reference rank' (1 = most certain; default 0: none; at most "
                        f"{MAX_REFERENCES})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    pixel_size = pixel_size_option(args.pixel_size, "--pixel-size", "detect")
    from hubseg.geometry import parse_region  # shapely/numpy: imported only when detect runs

    region = parse_region(args.region)
    if args.review < 0:
        raise InvalidInputError(f"--review must be >= 0 (0 prints no review list); got {args.review}")
    check_references(args.references, "--references")
    # Every output is checked before the slide is read or the model loaded: no work is lost to a bad path.
    output = check_output_file(args.output, "-o/--output")
    overlay = check_output_file(args.overlay, "--overlay", OVERLAY_SUFFIXES) if args.overlay else None
    check_distinct({"-o/--output": output, "--overlay": overlay})
    geometry = None
    if args.geometry:
        geometry = read_json_file(args.geometry, "--geometry file")
        if geometry.get("type") == "FeatureCollection":
            features = geometry.get("features") or []
            if len(features) != 1:
                raise InvalidInputError("--geometry FeatureCollection must hold exactly one feature")
            geometry = features[0]
    options = detection_options(args, object_type=args.object_type, references=args.references)
    options.validate()
    # Heavy imports (torch) only once the arguments are known to be good: bad input answers at once.
    from hubseg.pipeline import detect_and_write
    from hubseg.slide import open_slide

    bar = ProgressBar(f"detect {Path(args.slide).name}", enabled=not args.quiet)
    with open_slide(args.slide, pixel_size_um=pixel_size) as slide:  # slide errors before the slow model load
        model = load_model(args)
        try:
            result, _ = detect_and_write(slide, model, output, overlay, region=region, geometry=geometry,
                                         options=options, progress=bar)
        finally:
            bar.close()
    print(
        f"{result.count} objects ({result.uncertain_count} uncertain) by {result.model_name}; "
        f"tiles: {result.tiles_total} total, {result.tiles_skipped} skipped (no tissue); wrote {args.output}"
        + (f" and {args.overlay}" if overlay is not None else "")
    )
    if args.review:
        from hubseg.cli.review_list import review_table

        shown = "" if result.count <= args.review else f"; first {args.review} of {result.count}, see --review"
        print(f"\nReview list (most uncertain first{shown}):")
        print(review_table(result, limit=args.review))
    return 0
