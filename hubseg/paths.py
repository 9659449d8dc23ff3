"""Where hubseg keeps its data, and atomic file writes (temp file + rename) so nothing stored is half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DATA_DIR_ENV = "HUBSEG_DATA_DIR"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$HUBSEG_DATA_DIR``, else ``~/.hubseg`` (created if missing).

    A folder that cannot be created or written (``/proc/x``, a path under a file, a read-only disk) is one
    :class:`hubseg.errors.InvalidInputError` naming it, not a traceback.
    """
    from hubseg.errors import InvalidInputError

    chosen = explicit or os.environ.get(DATA_DIR_ENV) or Path.home() / ".hubseg"
    path = Path(chosen).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_fd, probe = tempfile.mkstemp(prefix=".hubseg-probe-", dir=path)
        os.close(probe_fd)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidInputError(
            f"cannot use data directory {path}: {reason}; choose a writable folder with --data-dir "
            f"or ${DATA_DIR_ENV}"
        ) from None
    return path


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, hence the /proc route first)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` so readers see either the old or the complete new file, never a partial one.

    The file gets the permissions a plain ``open()`` would give (0666 minus the umask) unless ``mode`` is
    given: pass ``mode=0o600`` for secrets (tokens) only.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~current_umask())
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


def atomic_write_text(path: str | os.PathLike, text: str, mode: int | None = None) -> Path:
    """Text variant of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


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
