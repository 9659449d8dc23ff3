"""Training data sources, all turned into :class:`TrainingImage` objects at the model's pixel size.

- :class:`ImageFolderSource` — ``images/NAME.png`` + ``masks/NAME.png`` (foreground = any channel > 127),
  e.g. ``../shared/data/pas-glomeruli-aidpath``; needs the pixel size.
- :class:`LabelSetSource` — a ``hubseg-labelset/1`` file (or :class:`hubseg.labels.LabelSet`): the image is
  read over the bounding box of the reviewed regions; inside them unannotated pixels are background,
  ``Rejected`` objects are background and sampled as hard negatives, outside them pixels are ignored.
- :class:`HubmapSource` — the HuBMAP Kaggle layout: ``train.csv`` (``id,encoding`` RLE) + ``train/ID.tiff``;
  the RGB is read lazily from the TIFF, the mask kept at model scale.

Label rasters are uint8 at model scale: 0 background, 1 glomerulus, 255 ignore.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from shapely import affinity

from hubseg.errors import InvalidInputError
from hubseg.pixels import read_rgb8
from hubseg.training.augment import IGNORE_INDEX

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
WHITE = 245  # padding colour outside the image (glass)
MIN_OBJECT_PIXELS = 20  # model-scale pixels; smaller specks in masks are not sampled as glomeruli


@dataclass
class TrainingImage:
    """One image at model scale: RGB (in memory, or lazily from a slide) and its label raster."""

    name: str
    label: np.ndarray  # uint8 H×W at model scale
    pixel_size_um: float  # model scale
    rgb: np.ndarray | None = None  # uint8 H×W×3 at model scale, or None when read from ``slide``
    slide: Any = None  # hubseg.slide.Slide for lazy reading
    origin: tuple[float, float] = (0.0, 0.0)  # level-0 position of model pixel (0, 0)
    downsample: float = 1.0  # level-0 px per model px
    positives: list[tuple[float, float]] = field(default_factory=list)  # object centres, model px
    negatives: list[tuple[float, float]] = field(default_factory=list)  # hard negatives, model px
    source: str = ""
    # reviewed regions (shapely, model px) of a label set: the units calibration holds out; empty = the whole image
    regions: list = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.label.shape)

    def read(self, x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB and label of a model-px window; outside the image: glass colour and ignore."""
        rows, cols = self.label.shape
        label = np.full((height, width), IGNORE_INDEX, np.uint8)
        rgb = np.full((height, width, 3), WHITE, np.uint8)
        ix0, iy0 = max(0, x0), max(0, y0)
        ix1, iy1 = min(cols, x0 + width), min(rows, y0 + height)
        if ix1 <= ix0 or iy1 <= iy0:
            return rgb, label
        label[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = self.label[iy0:iy1, ix0:ix1]
        if self.rgb is not None:
            rgb[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = self.rgb[iy0:iy1, ix0:ix1]
        else:
            region = self.slide.read_region(
                self.origin[0] + ix0 * self.downsample,
                self.origin[1] + iy0 * self.downsample,
                (ix1 - ix0) * self.downsample,
                (iy1 - iy0) * self.downsample,
                self.pixel_size_um,
            )
            h = min(region.shape[0], iy1 - iy0)
            w = min(region.shape[1], ix1 - ix0)
            rgb[iy0 - y0 : iy0 - y0 + h, ix0 - x0 : ix0 - x0 + w] = region[:h, :w]
        return rgb, label

    def read_all(self) -> np.ndarray:
        if self.rgb is not None:
            return self.rgb
        return self.read(0, 0, self.shape[1], self.shape[0])[0]


def _resize(array: np.ndarray, width: int, height: int, interpolation=cv2.INTER_AREA) -> np.ndarray:
    if array.shape[1] == width and array.shape[0] == height:
        return array
    return cv2.resize(array, (width, height), interpolation=interpolation)


def mask_to_model_scale(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boolean mask → model-scale bool by area averaging (a pixel is foreground when ≥ half covered)."""
    return _resize(mask.astype(np.float32), width, height) >= 0.5


def object_centres(foreground: np.ndarray, min_pixels: int = MIN_OBJECT_PIXELS) -> list[tuple[float, float]]:
    labels, count = ndi.label(foreground)
    if not count:
        return []
    sizes = ndi.sum(np.ones_like(labels), labels, index=range(1, count + 1))
    centres = ndi.center_of_mass(foreground, labels, index=range(1, count + 1))
    return [(float(cx), float(cy)) for (cy, cx), size in zip(centres, sizes) if size >= min_pixels]


def _describe(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"path": str(path)}
    readme = path / "README.md"
    if readme.is_file():  # data sets credit their source/licence in a README: keep its first lines
        info["readme"] = " ".join(readme.read_text(encoding="utf-8", errors="replace").split())[:1500]
    return info


class ImageFolderSource:
    """``root/images/*`` with masks of the same stem in ``root/masks/`` at ``pixel_size_um``."""

    kind = "image-folder"

    def __init__(self, root: str | os.PathLike, pixel_size_um: float, names: list[str] | None = None):
        self.root = Path(root).expanduser()
        if not pixel_size_um or float(pixel_size_um) <= 0:
            raise InvalidInputError(
                f"image folder {self.root} needs its pixel size: pass --pixel-size (µm per pixel, e.g. 0.4942)"
            )
        self.pixel_size_um = float(pixel_size_um)
        images_dir, masks_dir = self.root / "images", self.root / "masks"
        if not images_dir.is_dir() or not masks_dir.is_dir():
            raise InvalidInputError(f"{self.root} must contain images/ and masks/ folders (same file stems)")
        masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        self.pairs = []
        for image in sorted(images_dir.iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES or (names is not None and image.stem not in names):
                continue
            if image.stem not in masks:
                raise InvalidInputError(f"image {image.name} has no mask in {masks_dir} (expected {image.stem}.png)")
            self.pairs.append((image, masks[image.stem]))
        if not self.pairs:
            raise InvalidInputError(f"no images found in {images_dir} (supported: {', '.join(IMAGE_SUFFIXES)})")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "pixel_size_um": self.pixel_size_um, "images": len(self.pairs), **_describe(self.root)}

    def load(self, model_pixel_size_um: float) -> list[TrainingImage]:
        factor = self.pixel_size_um / model_pixel_size_um
        out = []
        for image_path, mask_path in self.pairs:
            rgb = read_rgb8(image_path)  # 16-bit/float tiles scaled as slides and uploads are
            mask = np.asarray(Image.open(mask_path))
            foreground = (mask.max(axis=-1) if mask.ndim == 3 else mask) > 127
            if foreground.shape != rgb.shape[:2]:
                raise InvalidInputError(f"mask {mask_path.name} is {foreground.shape}, image is {rgb.shape[:2]}")
            width = max(1, round(rgb.shape[1] * factor))
            height = max(1, round(rgb.shape[0] * factor))
            interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
            rgb_model = _resize(rgb, width, height, interpolation)
            fg_model = mask_to_model_scale(foreground, width, height)
            out.append(
                TrainingImage(
                    name=image_path.stem,
                    label=fg_model.astype(np.uint8),
                    pixel_size_um=model_pixel_size_um,
                    rgb=np.ascontiguousarray(rgb_model),
                    downsample=1.0 / factor,
                    positives=object_centres(fg_model),
                    source=str(image_path),
                )
            )
        return out


class LabelSetSource:
    """A reviewed label set on a slide (``hubseg-labelset/1``)."""

    kind = "label-set"

    def __init__(
        self,
        label_set,
        base_dir: str | os.PathLike | None = None,
        margin_um: float = 100.0,
        image_path: str | os.PathLike | None = None,
    ):
        """``label_set``: a path or a :class:`LabelSet`; ``image_path`` overrides the set's image (the
        server passes the stored file of an ``upload_id``)."""
        from hubseg.labels import LabelSet, load_label_set

        if isinstance(label_set, LabelSet):
            self.labels, self.path = label_set, None
        else:
            self.path = Path(label_set)
            self.labels = load_label_set(self.path)
            base_dir = base_dir or self.path.parent
        if image_path is not None:
            self.image_path = Path(image_path)
            if not self.image_path.is_file():
                raise InvalidInputError(f"label set image not found: {self.image_path}")
        else:
            self.image_path = self.labels.resolve_image(base_dir)
        self.margin_um = float(margin_um)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path) if self.path else None, "image": str(self.image_path),
                "model": self.labels.model, **self.labels.summary()}

    def load(self, model_pixel_size_um: float) -> list[TrainingImage]:
        from hubseg.geometry import rasterize_geometry
        from hubseg.slide import open_slide

        labels = self.labels
        slide = open_slide(self.image_path, pixel_size_um=labels.pixel_size_um)
        downsample = model_pixel_size_um / slide.pixel_size_um
        minx, miny, maxx, maxy = labels.region_union.bounds
        margin = self.margin_um / slide.pixel_size_um
        bx, by, bw, bh = slide.bounds
        x0, y0 = max(bx, minx - margin), max(by, miny - margin)
        x1, y1 = min(bx + bw, maxx + margin), min(by + bh, maxy + margin)
        if x1 <= x0 or y1 <= y0:
            raise InvalidInputError(f"label set regions lie outside the image {self.image_path.name}")
        width = max(1, int(round((x1 - x0) / downsample)))
        height = max(1, int(round((y1 - y0) / downsample)))
        rgb = slide.read_region(x0, y0, width * downsample, height * downsample, model_pixel_size_um)
        rgb = _resize(np.asarray(rgb)[..., :3], width, height)
        origin = (x0, y0)

        def raster(geometries) -> np.ndarray:
            mask = np.zeros((height, width), bool)
            for geometry in geometries:
                mask |= rasterize_geometry(geometry, (height, width), origin, downsample)
            return mask

        label = np.full((height, width), IGNORE_INDEX, np.uint8)
        label[raster(labels.regions)] = 0
        positive = raster(labels.positives)
        label[positive] = 1
        label[raster(labels.ignored)] = IGNORE_INDEX
        label[raster(labels.negatives) & ~positive] = 0  # explicit negatives count even outside regions

        def centres(geometries):
            return [((g.centroid.x - x0) / downsample, (g.centroid.y - y0) / downsample) for g in geometries]

        return [
            TrainingImage(
                name=self.image_path.stem,
                label=label,
                pixel_size_um=model_pixel_size_um,
                rgb=np.ascontiguousarray(rgb),
                origin=origin,
                downsample=downsample,
                positives=centres(labels.positives),
                negatives=centres(labels.negatives),
                source=str(self.path or self.image_path),
                regions=[affinity.affine_transform(g, [1 / downsample, 0, 0, 1 / downsample, -x0 / downsample,
                                                       -y0 / downsample]) for g in labels.regions],
            )
        ]


class HubmapSource:
    """HuBMAP "Hacking the Kidney" layout: ``train.csv`` (id, encoding) and ``train/<id>.tiff``."""

    kind = "hubmap"

    def __init__(self, root: str | os.PathLike, pixel_size_um: float = 0.5, ids: list[str] | None = None):
        self.root = Path(root).expanduser()
        self.pixel_size_um = float(pixel_size_um)
        csv_path = self.root / "train.csv"
        if not csv_path.is_file():
            raise InvalidInputError(f"{self.root} is not a HuBMAP layout: train.csv (id,encoding) not found")
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "id" not in rows[0] or "encoding" not in rows[0]:
            raise InvalidInputError(f"{csv_path} must have the columns id,encoding")
        self.rows = [r for r in rows if ids is None or r["id"] in ids]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "pixel_size_um": self.pixel_size_um, "images": len(self.rows), **_describe(self.root)}

    def _tiff(self, image_id: str) -> Path:
        for candidate in (self.root / "train" / f"{image_id}.tiff", self.root / "train" / f"{image_id}.tif"):
            if candidate.is_file():
                return candidate
        raise InvalidInputError(f"HuBMAP image {image_id} not found under {self.root / 'train'}")

    def load(self, model_pixel_size_um: float) -> list[TrainingImage]:
        from hubseg.metrics import rle_decode
        from hubseg.slide import open_slide

        out = []
        for row in self.rows:
            slide = open_slide(self._tiff(row["id"]), pixel_size_um=self.pixel_size_um)
            full_w, full_h = slide.dimensions
            downsample = model_pixel_size_um / slide.pixel_size_um
            width, height = max(1, round(full_w / downsample)), max(1, round(full_h / downsample))
            mask = rle_decode(row["encoding"], (full_h, full_w))
            fg = mask_to_model_scale(mask, width, height)
            del mask
            out.append(
                TrainingImage(
                    name=row["id"],
                    label=fg.astype(np.uint8),
                    pixel_size_um=model_pixel_size_um,
                    slide=slide,
                    origin=tuple(slide.bounds[:2]),
                    downsample=downsample,
                    positives=object_centres(fg),
                    source=str(self._tiff(row["id"])),
                )
            )
        return out


def open_source(spec: str, pixel_size_um: float | None = None):
    """A source from a path: label-set ``.json``, HuBMAP folder (``train.csv``) or image+mask folder."""
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".json":
        return LabelSetSource(path)
    if path.is_dir() and (path / "train.csv").is_file():
        return HubmapSource(path, pixel_size_um or 0.5)
    if path.is_dir() and (path / "images").is_dir():
        if not pixel_size_um:
            raise InvalidInputError(f"image folder {path} needs --pixel-size (µm per pixel of its images)")
        return ImageFolderSource(path, pixel_size_um)
    raise InvalidInputError(
        f"cannot use {spec} as training data: give a label-set .json, a folder with images/ and masks/, "
        "or a HuBMAP folder with train.csv"
    )
