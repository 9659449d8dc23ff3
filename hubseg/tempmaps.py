"""Temporary folders for disk-backed probability/energy maps (``<tmp>/hubseg-maps-<pid>-*``).

The owner's process id is part of the name so that folders left behind by a process that was killed
(SIGKILL, power loss) can be recognised and removed by the next hubseg process: :func:`sweep_stale_map_dirs`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "hubseg-maps-"
_NAME = re.compile(rf"^{PREFIX}(?:(\d+)-)?")
#: Folders from older releases carry no process id: removed once nothing in them changed for this long.
LEGACY_MAX_AGE_S = 24 * 3600


def make_map_dir() -> str:
    """A new private folder for one prediction's map files (stale ones of dead processes are swept first)."""
    sweep_stale_map_dirs()
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


def _last_change(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for entry in folder.iterdir():
        try:
            times.append(entry.stat().st_mtime)
        except OSError:
            pass
    return max(times)


def sweep_stale_map_dirs(root: str | os.PathLike | None = None) -> list[str]:
    """Remove map folders under ``root`` (default: the temp dir) whose process is gone; returns their paths."""
    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    now = time.time()
    for folder in entries:
        match = _NAME.match(folder.name)
        if not match:
            continue
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            if match.group(1) is not None:
                stale = not _process_alive(int(match.group(1)))
            else:
                stale = now - _last_change(folder) > LEGACY_MAX_AGE_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed
