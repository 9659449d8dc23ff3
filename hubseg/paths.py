"""Where hubseg keeps its data, and atomic file writes (temp file + rename) so nothing stored is half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DATA_DIR_ENV = "HUBSEG_DATA_DIR"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$HUBSEG_DATA_DIR``, else ``~/.hubseg`` (created if missing)."""
    chosen = explicit or os.environ.get(DATA_DIR_ENV) or Path.home() / ".hubseg"
    path = Path(chosen).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see either the old or the complete new file, never a partial one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_json_file(path: str | os.PathLike, what: str, missing_hint: str = ""):
    """Parse a JSON file, turning a missing or malformed file into one clear ``InvalidInputError``.

    ``what`` names the file for the user ("label set", "model card", ...); ``missing_hint`` says what to
    pass instead when the file does not exist.
    """
    import json

    from hubseg.errors import InvalidInputError

    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"{what} not found: {source}" + (f"; {missing_hint}" if missing_hint else ""))
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{what} {source} is not valid JSON: {error}") from None
