"""``hubseg demo``: detect glomeruli on the shipped sample slide, write GeoJSON + overlay, print the review list."""

from __future__ import annotations

from pathlib import Path

from hubseg.cli.checks import check_output_folder
from hubseg.cli.detect import ProgressBar, add_model_arguments, detection_options, load_model
from hubseg.cli.review_list import gate_text, review_table
from hubseg.errors import NotFoundError

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
SAMPLE_SLIDE = SAMPLE_DIR / "aidpath-pas-sample.ome.tif"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run detection on the shipped sample slide (no QuPath needed)",
        description="Detect glomeruli on the sample PAS slide shipped with hubseg (AIDPATH tiles, CC BY 4.0) with "
        "the active model, write the QuPath GeoJSON and an overlay PNG, and print the review list "
        "(most uncertain first).",
    )
    parser.add_argument("--output-dir", default="hubseg-demo", metavar="DIR", help="where to write the results (default: ./hubseg-demo)")
    parser.add_argument("--slide", default=str(SAMPLE_SLIDE), help="slide to use instead of the shipped sample")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from hubseg.pipeline import detect_and_write
    from hubseg.slide import open_slide

    slide_path = Path(args.slide)
    if not slide_path.is_file():
        raise NotFoundError(f"sample slide not found at {slide_path}; reinstall hubseg or pass --slide PATH")
    options = detection_options(args)
    options.validate()
    # demo's own results folder is created (it is named by --output-dir, default ./hubseg-demo), but only
    # where it can be written, and checked before the model loads.
    out_dir = check_output_folder(args.output_dir, "--output-dir", create=True)
    model = load_model(args)
    geojson_path = out_dir / "detections.geojson"
    overlay_path = out_dir / "overlay.png"
    bar = ProgressBar("demo", enabled=not args.quiet)
    with open_slide(slide_path) as slide:
        try:
            result, _ = detect_and_write(slide, model, geojson_path, overlay_path, options=options, progress=bar)
        finally:
            bar.close()
        width, height = slide.dimensions
    print(f"sample slide {slide_path.name}: {width}×{height} px at {slide.pixel_size_um:g} µm/px")
    print(f"model {result.model_name} (v{result.model_version}) at {result.model_pixel_size_um:g} µm/px, "
          f"threshold {result.threshold:g}, {gate_text(result)}")
    print(f"{result.count} objects, {result.uncertain_count} uncertain; tiles {result.tiles_total} "
          f"({result.tiles_skipped} skipped: no tissue)")
    print()
    print("Review list (most uncertain first):")
    print(review_table(result))
    print()
    print(f"wrote {geojson_path} (QuPath: File > Import objects) and {overlay_path}")
    return 0
