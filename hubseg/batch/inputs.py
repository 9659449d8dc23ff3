"""What a batch runs on: slide paths/globs/folders, a CSV manifest, or the images of a QuPath project.

Only file names are handled here; no slide is opened (the driver never reads pixels).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from hubseg.errors import InvalidInputError, NotFoundError
from hubseg.slide import OPENSLIDE_ONLY_SUFFIXES, OPENSLIDE_TIFF_SUFFIXES, PIL_SUFFIXES, TIFF_SUFFIXES

SLIDE_SUFFIXES = tuple(sorted(set(TIFF_SUFFIXES + PIL_SUFFIXES + OPENSLIDE_ONLY_SUFFIXES + OPENSLIDE_TIFF_SUFFIXES)))
MANIFEST_COLUMNS = ("path", "pixel_size_um", "region")


@dataclass(frozen=True)
class BatchItem:
    """One slide of a batch: its file, optional overrides, and the output stem (unique within the batch)."""

    path: str
    stem: str
    pixel_size_um: float | None = None
    region: tuple[float, float, float, float] | None = None


def slide_stem(path: str | os.PathLike) -> str:
    """File name without its image suffix (``a.ome.tif`` → ``a``)."""
    name = Path(path).name
    lower = name.lower()
    for suffix in sorted(SLIDE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)] or name
    return Path(name).stem or name


def _is_slide_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(SLIDE_SUFFIXES)


def expand_paths(patterns: list[str]) -> list[Path]:
    """Paths, globs (``**`` recursive) and folders (their slide files, not recursive) → absolute paths.

    A literal path that does not exist is kept (it becomes a ``failed`` row); a glob or folder that
    matches no slide is an error, since it is almost always a typo.
    """
    found: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(os.path.expanduser(pattern), recursive=True))]
            matches = [p for p in matches if _is_slide_file(p)]
            if not matches:
                raise NotFoundError(f"no slide files match {pattern!r} (slide suffixes: {', '.join(SLIDE_SUFFIXES)})")
            found.extend(matches)
        elif Path(pattern).expanduser().is_dir():
            folder = Path(pattern).expanduser()
            matches = sorted(p for p in folder.iterdir() if _is_slide_file(p))
            if not matches:
                raise NotFoundError(f"folder {folder} holds no slide files ({', '.join(SLIDE_SUFFIXES)})")
            found.extend(matches)
        else:
            found.append(Path(pattern).expanduser())
    return [Path(os.path.abspath(p)) for p in found]


def _float_or_none(text: str, what: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"{what}: pixel_size_um must be a number, got {text!r}") from None
    if not value > 0:
        raise InvalidInputError(f"{what}: pixel_size_um must be > 0, got {text!r}")
    return value


def read_manifest(path: str | os.PathLike) -> list[tuple[Path, float | None, tuple | None]]:
    """CSV rows ``path[,pixel_size_um][,region]`` (header optional; region ``"X,Y,W,H"`` quoted or ``X Y W H``).

    Relative paths are relative to the manifest's folder.
    """
    from hubseg.geometry import parse_region

    manifest = Path(path).expanduser()
    if not manifest.is_file():
        raise NotFoundError(f"manifest not found: {manifest}")
    rows = []
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        for number, cells in enumerate(csv.reader(handle), start=1):
            cells = [c.strip() for c in cells]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if number == 1 and cells[0].lower() == "path":
                unknown = [c for c in cells if c.lower() not in MANIFEST_COLUMNS]
                if unknown:
                    raise InvalidInputError(f"manifest {manifest.name}: unknown column {unknown[0]!r}; valid: {', '.join(MANIFEST_COLUMNS)}")
                continue
            where = f"manifest {manifest.name} line {number}"
            if len(cells) > 3:  # an unquoted X,Y,W,H region spills over four cells
                cells = cells[:2] + [",".join(cells[2:])]
            slide = Path(cells[0]).expanduser()
            if not slide.is_absolute():
                slide = manifest.parent / slide
            pixel_size = _float_or_none(cells[1] if len(cells) > 1 else "", where)
            region_text = cells[2].replace(" ", ",") if len(cells) > 2 and cells[2] else None
            try:
                region = parse_region(region_text)
            except InvalidInputError as error:
                raise InvalidInputError(f"{where}: {error}".replace("--region", "region")) from None
            rows.append((Path(os.path.abspath(slide)), pixel_size, region))
    if not rows:
        raise InvalidInputError(f"manifest {manifest} lists no slides (one 'path[,pixel_size_um][,region]' row per slide)")
    return rows


def project_images(project: str | os.PathLike) -> list[tuple[Path, float | None, tuple | None]]:
    """The local image files of a QuPath project with QuPath's pixel calibration (read-only, via paquo)."""
    from hubseg.project.qupath_project import open_project
    from hubseg.project.store import path_from_uri

    store = open_project(project)  # read-only: nothing is written into the project
    try:
        images = store.images()
    finally:
        store.close()
    if not images:
        raise InvalidInputError(f"QuPath project {project} has no images")
    return [(Path(os.path.abspath(path_from_uri(image.uri))), image.pixel_size_um or None, None) for image in images]


def unique_stems(paths: list[Path]) -> list[str]:
    """Output stems: the file's stem, plus a short hash of its folder when two slides share a stem."""
    stems = [slide_stem(p) for p in paths]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    out = []
    for path, stem in zip(paths, stems):
        if counts[stem] > 1:
            stem = f"{stem}-{hashlib.sha256(str(path.parent).encode()).hexdigest()[:8]}"
        out.append(stem)
    if len(set(out)) != len(out):
        duplicates = sorted({str(p) for p, s in zip(paths, out) if out.count(s) > 1})
        raise InvalidInputError(f"the same slide is listed more than once: {duplicates[0]}")
    return out


def collect_inputs(
    slides: list[str] | None = None,
    manifest: str | None = None,
    project: str | None = None,
    pixel_size_um: float | None = None,
) -> list[BatchItem]:
    """Exactly one source (slides, manifest or project) → batch items; ``pixel_size_um`` overrides all rows."""
    given = [name for name, value in (("SLIDES", slides), ("--manifest", manifest), ("--project", project)) if value]
    if len(given) != 1:
        raise InvalidInputError("give exactly one of: SLIDES (paths, globs or folders), --manifest FILE.csv, --project PROJECT.qpproj"
                                + (f" (got {', '.join(given)})" if given else ""))
    if slides:
        rows = [(p, None, None) for p in expand_paths(list(slides))]
    elif manifest:
        rows = read_manifest(manifest)
    else:
        rows = project_images(project)
    stems = unique_stems([r[0] for r in rows])
    return [
        BatchItem(path=str(path), stem=stem, pixel_size_um=pixel_size_um or size, region=region)
        for (path, size, region), stem in zip(rows, stems)
    ]
