"""The merger: Gaussian-weighted blending of tile outputs into a row band one tile high; rows no later tile
can touch are normalised and flushed to the output maps, held in RAM for small maps and in raw float32 files
(``pwrite``/``pread``, never mapped whole) for large ones."""

from __future__ import annotations

import os
import shutil
import weakref
from dataclasses import dataclass, field

import numpy as np

from hubseg.tempmaps import make_map_dir
from hubseg.tiling import Tile, gaussian_importance


class RowStore:
    """A float32 ``height × width`` array written and read by rows, in RAM or in a raw file."""

    def __init__(self, height: int, width: int, path: str | None):
        self.shape = (height, width)
        self.path = path
        self._row_bytes = width * 4
        if path is None:
            self._array = np.zeros((height, width), np.float32)
            self._fd = None
        else:
            self._array = None
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.ftruncate(self._fd, height * self._row_bytes)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if self._fd is None:
            self._array[y0:y0 + rows.shape[0]] = rows
        else:
            os.pwrite(self._fd, rows.tobytes(), y0 * self._row_bytes)

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        y0, y1 = max(0, y0), min(self.shape[0], y1)
        if self._fd is None:
            return self._array[y0:y1].copy()
        count = max(0, y1 - y0)
        data = os.pread(self._fd, count * self._row_bytes, y0 * self._row_bytes)
        return np.frombuffer(data, np.float32).reshape(count, self.shape[1]).copy()

    def as_array(self) -> np.ndarray:
        """The whole array: the RAM array, or a read-only memmap of the file (nothing is read until sliced)."""
        if self._fd is None:
            return self._array
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=self.shape)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class PredictionMaps:
    """Probability and negative energy at model scale for a level-0 region.

    Map pixel (i, j) covers level-0 ``origin + (j, i)·downsample``. ``probability``/``energy`` are float32
    arrays (RAM, or read-only memmaps of temporary files when large); ``read_rows(name, y0, y1)`` reads a
    row band without mapping the file (what bounded-memory consumers use). Call ``close()`` to delete the
    temporary files (also done when the object is garbage-collected).
    """

    probability: np.ndarray
    energy: np.ndarray
    origin: tuple[float, float]
    downsample: float
    pixel_size_um: float
    tiles_total: int = 0
    tiles_skipped: int = 0
    disk_backed: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _stores: dict[str, RowStore] = field(default_factory=dict, repr=False)
    _tempdir: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if self._tempdir:
            self._finalizer = weakref.finalize(self, _cleanup, list(self._stores.values()), self._tempdir)
        else:
            self._finalizer = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.probability.shape)

    def read_rows(self, name: str, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` of ``"probability"`` or ``"energy"`` as a new float32 array."""
        if name not in ("probability", "energy"):
            raise ValueError("name must be 'probability' or 'energy'")
        store = self._stores.get(name)
        if store is not None:
            return store.read_rows(y0, y1)
        array = getattr(self, name)
        return np.array(array[max(0, y0):min(array.shape[0], y1)], dtype=np.float32)

    def close(self) -> None:
        if self._finalizer is not None:
            self.probability = self.energy = np.zeros((0, 0), np.float32)
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _cleanup(stores, tempdir):
    for store in stores:
        store.close()
    shutil.rmtree(tempdir, ignore_errors=True)


def open_stores(height: int, width: int, disk: bool) -> tuple[dict[str, RowStore], str | None]:
    """The ``probability`` and ``energy`` stores (in a fresh temporary folder when ``disk``) and that folder."""
    tempdir = make_map_dir() if disk else None
    stores = {name: RowStore(height, width, os.path.join(tempdir, f"{name}.f32") if disk else None)
              for name in ("probability", "energy")}
    return stores, tempdir


def discard_stores(stores: dict[str, RowStore], tempdir: str | None) -> None:
    """Close the stores and delete their folder (after a failure or cancel: nothing is kept)."""
    for store in stores.values():
        store.close()
    if tempdir:
        shutil.rmtree(tempdir, ignore_errors=True)


class RowBandMerger:
    """Blends tiles, arriving in row-major order, into a band one tile high and flushes finished rows.

    Each tile adds ``value × w`` and ``w`` (Gaussian importance) into the band; a row is final once no later
    tile can touch it (the next tile starts below it), and is then written as ``Σ value·w / Σ w`` (0 where no
    tile covered it). Memory: three ``tile_size × width`` float32 buffers, whatever the map height.
    """

    def __init__(self, stores: dict[str, RowStore], width: int, height: int, tile_size: int):
        self.stores, self.width, self.height, self.tile_size = stores, width, height, tile_size
        self.weights = gaussian_importance(tile_size)
        self.band_rows = min(tile_size, height)
        self.acc_p = np.zeros((self.band_rows, width), np.float32)
        self.acc_e = np.zeros((self.band_rows, width), np.float32)
        self.acc_w = np.zeros((self.band_rows, width), np.float32)
        self.band_y = 0  # map row of the band buffer's first row

    def flush(self, until: int) -> None:
        """Normalise and write map rows [band_y, until); shift the band so it starts at ``until``."""
        until = min(until, self.height)
        # Rows past the buffer (skipped tile rows) were never touched: the stores already hold zeros there.
        count = min(until - self.band_y, self.band_rows)
        if count <= 0:
            return
        w = self.acc_w[:count]
        covered = w > 0
        safe = np.where(covered, w, 1.0)
        self.stores["probability"].write_rows(self.band_y, np.where(covered, self.acc_p[:count] / safe, 0.0))
        self.stores["energy"].write_rows(self.band_y, np.where(covered, self.acc_e[:count] / safe, 0.0))
        for acc in (self.acc_p, self.acc_e, self.acc_w):
            if count < self.band_rows:
                acc[:self.band_rows - count] = acc[count:].copy()
            acc[self.band_rows - count:] = 0
        self.band_y = until

    def add(self, tile: Tile, prob: np.ndarray, energy: np.ndarray) -> None:
        """Blend one tile's ``tile_size²`` probability and energy in (tiles must come in row-major order)."""
        if tile.y > self.band_y:
            self.flush(tile.y)
        th = min(self.tile_size, self.height - tile.y)
        tw = min(self.tile_size, self.width - tile.x)
        r0 = tile.y - self.band_y
        wgt = self.weights[:th, :tw]
        self.acc_p[r0:r0 + th, tile.x:tile.x + tw] += prob[:th, :tw] * wgt
        self.acc_e[r0:r0 + th, tile.x:tile.x + tw] += energy[:th, :tw] * wgt
        self.acc_w[r0:r0 + th, tile.x:tile.x + tw] += wgt

    def finish(self) -> None:
        """Flush every remaining row (all tiles are in)."""
        while self.band_y < self.height:
            self.flush(self.band_y + self.band_rows)


__all__ = ["PredictionMaps", "RowBandMerger", "RowStore", "discard_stores", "open_stores"]
