"""``hubseg project predict|export|status``: batch work on a whole QuPath project through paquo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hubseg.errors import InvalidInputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "project",
        help="detect, export labels and count review progress across a whole QuPath project (needs paquo + QuPath)",
        description="Batch work on a QuPath project (.qpproj) through paquo. Needs QuPath: set PAQUO_QUPATH_DIR.",
    )
    actions = parser.add_subparsers(dest="project_command", metavar="ACTION")
    actions.required = True

    predict = actions.add_parser(
        "predict",
        help="detect glomeruli in every image and write them as unreviewed objects",
        description="Detect glomeruli in the project's images and write them (class Glomerulus, measurements, "
        "metadata hubseg.review=pending). Replaces only earlier hubseg objects that are unreviewed and unedited; "
        "backs up each image's data under <project>/hubseg/backups first. Refuses while QuPath is running.",
    )
    predict.add_argument("project", help="project.qpproj or its folder")
    predict.add_argument("--images", nargs="+", metavar="NAME", help="only these images (names as in QuPath)")
    predict.add_argument("--model", help="model name or folder (default: the active model)")
    predict.add_argument("--data-dir", help="hubseg data directory (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
    predict.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    predict.add_argument("--pixel-size-um", type=float, help="level-0 µm/px for images QuPath has no calibration for")
    predict.add_argument("--threshold", type=float, help="probability threshold (default: the model's)")
    predict.add_argument(
        "--force", action="store_true", help="write although a QuPath process is running (it must have another project open)"
    )

    export = actions.add_parser(
        "export",
        help="write the reviewed labels of every image as hubseg-labelset/1 files (and POST them to a server)",
    )
    export.add_argument("project", help="project.qpproj or its folder")
    export.add_argument("-o", "--output", required=True, help="output folder for <image>.labelset.json files")
    export.add_argument("--images", nargs="+", metavar="NAME", help="only these images")
    export.add_argument("--to-server", metavar="URL", help="also POST each label set to this hubseg server")
    export.add_argument("--token-file", help="file holding the server's bearer token")
    export.add_argument("--pixel-size-um", type=float, help="level-0 µm/px for images without calibration")

    status = actions.add_parser("status", help="per image: objects, pending, accepted, rejected, corrected")
    status.add_argument("project", help="project.qpproj or its folder")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.project_command == "status":
        return _status(args)
    if args.project_command == "export":
        return _export(args)
    return _predict(args)


def _status(args: argparse.Namespace) -> int:
    from hubseg.project import batch
    from hubseg.project.qupath_project import open_project

    store = open_project(args.project)
    try:
        rows = batch.status_project(store)
    finally:
        store.close()
    print(json.dumps(rows, indent=1) if args.json else format_status(rows))
    return 0


def _export(args: argparse.Namespace) -> int:
    from hubseg.project import batch
    from hubseg.project.detection import image_pixel_size
    from hubseg.project.qupath_project import open_project

    token = None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as error:
            raise InvalidInputError(f"cannot read --token-file {args.token_file}: {error.strerror}") from None
    store = open_project(args.project)
    try:
        reports = batch.export_project(
            store,
            Path(args.output),
            pixel_size_for=lambda image, path: image_pixel_size(image, path, args.pixel_size_um),
            image_names=args.images,
            to_server=args.to_server,
            token=token,
        )
    finally:
        store.close()
    for report in reports:
        if report.error:
            print(f"hubseg project: error: {report.image}: {report.error}", file=sys.stderr)
        elif report.skipped:
            print(f"{report.image}: skipped ({report.skipped})")
        else:
            sent = f", server id {report.server_id}" if report.server_id else ""
            print(
                f"{report.image}: {report.positives} glomeruli, {report.negatives} rejected, "
                f"{report.regions} reviewed regions -> {report.path}{sent}"
            )
    if not any(report.path or report.error for report in reports):
        print("nothing reviewed yet: accept/reject objects or draw 'Reviewed region' annotations in QuPath", file=sys.stderr)
    return 2 if any(report.error for report in reports) else 0


def _predict(args: argparse.Namespace) -> int:
    from hubseg.project import batch
    from hubseg.project.detection import make_image_detector
    from hubseg.project.qupath_project import open_project

    store = open_project(args.project, writable=True)
    try:
        detect_image, model_name = make_image_detector(
            args.model,
            data_dir=args.data_dir,
            device=args.device,
            pixel_size_um=args.pixel_size_um,
            threshold=args.threshold,
        )
        print(f"model: {model_name}")
        reports = batch.predict_project(
            store, detect_image, image_names=args.images, force=args.force, progress=lambda message: print(message, flush=True)
        )
    finally:
        store.close()
    failed = [report for report in reports if report.error]
    for report in failed:
        print(f"hubseg project: error: {report.image}: {report.error}", file=sys.stderr)
    return 2 if failed else 0


def format_status(rows: list[dict]) -> str:
    from hubseg.project.review import STATUS_COLUMNS

    headers = ["image", *STATUS_COLUMNS]
    table = [[str(row[h]) for h in headers] for row in rows]
    totals = ["TOTAL", *[str(sum(int(row[c]) for row in rows)) for c in STATUS_COLUMNS]]
    widths = [max(len(h), *(len(r[i]) for r in table + [totals])) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table + [totals]]
    return "\n".join(lines)
