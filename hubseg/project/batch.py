"""The three project commands as library calls on a :class:`~hubseg.project.store.ProjectStore`.

No paquo here: the CLI opens the store with ``qupath_project.open_project`` and passes it in, tests pass
an in-memory store.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hubseg.errors import HubsegError, InvalidInputError, NotFoundError
from hubseg.paths import atomic_write_text
from hubseg.project import labelsets, review, safety
from hubseg.project.store import ImageRef, NewObject, ProjectStore, path_from_uri

Progress = Callable[[str], None]


def select_images(store: ProjectStore, names: list[str] | None) -> list[ImageRef]:
    """The project's images, or those named (by image name or entry id); unknown names list the valid ones."""
    images = store.images()
    if not names:
        return images
    by_name = {image.name: image for image in images}
    by_id = {image.entry_id: image for image in images}
    chosen, unknown = [], []
    for name in names:
        image = by_name.get(name) or by_id.get(name)
        (chosen if image else unknown).append(image or name)
    if unknown:
        valid = ", ".join(sorted(by_name)) or "(the project has no images)"
        raise NotFoundError(f"no image named {', '.join(map(repr, unknown))} in this project; valid names: {valid}")
    return chosen


@dataclass
class PredictReport:
    image: str
    added: int = 0
    replaced: int = 0
    kept: int = 0
    dropped_duplicates: int = 0
    backup: str | None = None
    error: str | None = None


def predict_project(
    store: ProjectStore,
    detect_image: Callable[[ImageRef], list[NewObject]],
    *,
    image_names: list[str] | None = None,
    force: bool = False,
    processes: list[safety.QuPathProcess] | None = None,
    progress: Progress | None = None,
) -> list[PredictReport]:
    """Detect on each selected image and write the proposals, replacing only replaceable hubseg objects.

    Refuses while QuPath may have the project open; holds the hubseg write lock; backs up each image's
    data files right before writing into it.
    """
    images = select_images(store, image_names)
    project_dir = Path(store.path).parent
    image_paths = []
    for image in images:
        try:
            image_paths.append(path_from_uri(image.uri))
        except HubsegError:
            pass
    safety.ensure_not_open_in_qupath(project_dir, protected_paths=image_paths, force=force, processes=processes)
    reports = []
    with safety.ProjectWriteLock(project_dir):
        stamp = safety.new_backup_stamp(project_dir)
        for number, image in enumerate(images, 1):
            if progress:
                progress(f"[{number}/{len(images)}] {image.name}: detecting")
            try:
                proposals = detect_image(image)
            except HubsegError as error:  # one unreadable image must not stop the batch
                reports.append(PredictReport(image=image.name, error=str(error)))
                if progress:
                    progress(f"[{number}/{len(images)}] {image.name}: skipped: {error}")
                continue
            plan = review.plan_replacement(store.read_objects(image), proposals)
            report = PredictReport(
                image=image.name,
                added=len(plan.add),
                replaced=len(plan.remove_keys),
                kept=plan.kept,
                dropped_duplicates=plan.dropped_duplicates,
            )
            if plan.add or plan.remove_keys:
                backup = safety.backup_files(store.image_data_files(image), project_dir, image.entry_id, stamp)
                report.backup = str(backup) if backup else None
                store.write_objects(image, plan.remove_keys, plan.add)
            if progress:
                progress(
                    f"[{number}/{len(images)}] {image.name}: {report.added} added, {report.replaced} replaced, "
                    f"{report.kept} kept, {report.dropped_duplicates} duplicates of kept objects skipped"
                )
            reports.append(report)
    return reports


def features_to_new_objects(feature_collection: dict[str, Any], model_name: str) -> list[NewObject]:
    """Turn a detection result (QuPath GeoJSON from ``DetectionResult.to_feature_collection()``) into
    objects to write: class ``Glomerulus``, the engine's measurements, metadata marking them pending."""
    from shapely.geometry import shape

    objects = []
    for feature in feature_collection.get("features", []):
        properties = feature.get("properties") or {}
        classification = properties.get("classification") or {}
        measurements = {
            str(k): float(v) for k, v in (properties.get("measurements") or {}).items() if isinstance(v, (int, float))
        }
        metadata = {str(k): str(v) for k, v in (properties.get("metadata") or {}).items()}
        metadata[review.META_MODEL] = metadata.get(review.META_MODEL) or model_name
        metadata[review.META_REVIEW] = review.PENDING
        if review.META_ENERGY not in metadata and "hubseg energy" in measurements:
            metadata[review.META_ENERGY] = f"{measurements['hubseg energy']:.6g}"
        color = classification.get("color")
        objects.append(
            NewObject(
                geometry=shape(feature["geometry"]),
                class_name=str(classification.get("name") or review.GLOMERULUS_CLASS),
                object_type=properties.get("objectType", "annotation"),
                metadata=metadata,
                measurements=measurements,
                color=tuple(int(c) for c in color[:3]) if isinstance(color, list) and len(color) >= 3 else None,
            )
        )
    return objects


def status_project(store: ProjectStore) -> list[dict[str, Any]]:
    """One row per image: name plus :func:`review.status_counts`."""
    return [{"image": image.name, **review.status_counts(store.read_objects(image))} for image in store.images()]


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"
    return cleaned[:120]


@dataclass
class ExportReport:
    image: str
    path: str | None = None
    positives: int = 0
    negatives: int = 0
    regions: int = 0
    server_id: str | None = None
    skipped: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def export_project(
    store: ProjectStore,
    out_dir: Path,
    *,
    pixel_size_for: Callable[[ImageRef, Path], float],
    image_names: list[str] | None = None,
    to_server: str | None = None,
    token: str | None = None,
) -> list[ExportReport]:
    """Write one label set per image with reviewed content to ``out_dir`` (and POST it when asked)."""
    out_dir = Path(out_dir)
    reports = []
    used_names: set[str] = set()
    for image in select_images(store, image_names):
        report = ExportReport(image=image.name)
        reports.append(report)
        objects = store.read_objects(image)
        try:  # one image without a local file or a pixel size must not stop the others
            path = path_from_uri(image.uri)
            label_set = labelsets.build_label_set(
                objects, image_path=path, pixel_size_um=functools.partial(pixel_size_for, image, path)
            )
        except HubsegError as error:
            report.error = str(error)
            continue
        if label_set is None:
            report.skipped = "nothing reviewed"
            continue
        classes = [f["properties"]["classification"]["name"] for f in label_set["features"]["features"]]
        report.positives = classes.count(review.GLOMERULUS_CLASS)
        report.negatives = classes.count(review.REJECTED_CLASS)
        report.regions = len(label_set["regions"])
        stem = _safe_filename(image.name)
        if stem in used_names:
            stem = f"{stem}-{_safe_filename(image.entry_id)}"
        used_names.add(stem)
        target = out_dir / f"{stem}.labelset.json"
        atomic_write_text(target, json.dumps(label_set, indent=1))
        report.path = str(target)
        if to_server:
            report.server_id = post_label_set(to_server, label_set, token=token)
    return reports


def post_label_set(server_url: str, label_set: dict[str, Any], *, token: str | None = None, timeout: float = 60) -> str:
    """``POST /v1/labels``; returns the new label set's id. Server errors become one-line ``HubsegError``s."""
    url = server_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"--to-server must be an http(s) URL such as http://127.0.0.1:8765, got {server_url!r}")
    if not url.endswith("/v1"):
        url += "/v1"
    request = urllib.request.Request(
        url + "/labels",
        data=json.dumps(label_set).encode("utf-8"),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except Exception:
            message = error.reason
        raise HubsegError(f"the server refused the label set (HTTP {error.code}): {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise HubsegError(f"cannot reach the hubseg server at {server_url} ({error}); start it with `hubseg serve`") from None
    return str(body.get("id", ""))
