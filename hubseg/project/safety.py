"""Safety around writing into a QuPath project: is QuPath running, one hubseg writer at a time, backups.

Why a process check: QuPath has no project lock file. While an image is open, QuPath holds its object
hierarchy in memory and rewrites ``data/<id>/data.qpdata`` from memory when the user saves, so anything
written behind its back is silently lost (or QuPath's unsaved edits are). Project files do not reveal
whether QuPath has them open (QuPath does not keep ``project.qpproj`` open), so the only dependable
signal is a running QuPath process on this machine. We refuse while one runs; ``--force`` overrides
that for the case the user knows QuPath has a *different* project open -- except when the running
QuPath visibly holds a file of this project open (Linux ``/proc/<pid>/fd``), which always refuses.

A hubseg lock file (``<project>/hubseg/write.lock``, created exclusively) keeps two hubseg writers
(two terminals, a cron job) from interleaving; a lock left by a dead process on this host is taken over.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from hubseg.errors import ConflictError


@dataclass
class QuPathProcess:
    pid: int
    command: str
    open_files: list[str] = field(default_factory=list)


def _looks_like_qupath(name: str, argv: list[str]) -> bool:
    if name.lower().startswith("qupath"):
        return True
    for token in argv[:1] + [arg for arg in argv[1:] if not arg.startswith("-")]:
        base = os.path.basename(token.replace("\\", "/")).lower()
        if base in ("qupath", "qupath.exe") or base.startswith("qupath-app") or token == "qupath.QuPath":
            return True
    return False


def find_qupath_processes() -> list[QuPathProcess]:
    """QuPath processes of this machine (psutil when installed, else ``/proc``); never this process."""
    own = os.getpid()
    found: list[QuPathProcess] = []
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        for proc in psutil.process_iter(["pid", "name", "cmdline"]):
            info = proc.info
            if info["pid"] == own or not _looks_like_qupath(info.get("name") or "", info.get("cmdline") or []):
                continue
            try:
                files = [f.path for f in proc.open_files()]
            except Exception:  # access denied, zombie: the process itself is what matters
                files = []
            found.append(QuPathProcess(info["pid"], " ".join(info.get("cmdline") or [info.get("name") or ""]), files))
        return found
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return found
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            name = (entry / "comm").read_text().strip()
            argv = [a for a in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
        except OSError:
            continue
        if not _looks_like_qupath(name, argv):
            continue
        files = []
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    files.append(os.readlink(fd))
                except OSError:
                    pass
        except OSError:
            pass
        found.append(QuPathProcess(int(entry.name), " ".join(argv) or name, files))
    return found


def ensure_not_open_in_qupath(
    project_dir: Path,
    *,
    protected_paths: list[Path] = (),
    force: bool = False,
    processes: list[QuPathProcess] | None = None,
) -> None:
    """Raise ``ConflictError`` if QuPath may have this project open (see the module docstring)."""
    processes = find_qupath_processes() if processes is None else processes
    if not processes:
        return
    roots = [str(Path(project_dir).resolve())] + [str(Path(p).resolve()) for p in protected_paths]
    for proc in processes:
        holding = [f for f in proc.open_files if any(f == root or f.startswith(root + os.sep) for root in roots)]
        if holding:
            raise ConflictError(
                f"QuPath (pid {proc.pid}) has this project open (it holds {holding[0]}); close the project in "
                "QuPath (File > Project > Close project) or quit QuPath, then run again"
            )
    if force:
        return
    proc = processes[0]
    raise ConflictError(
        f"QuPath is running (pid {proc.pid}) and may have this project open; QuPath overwrites an open image's "
        "objects when it saves, so quit QuPath (or close this project) and run again, or pass --force if it has "
        "a different project open"
    )


class ProjectWriteLock:
    """Exclusive ``<project>/hubseg/write.lock`` held while hubseg writes into the project."""

    def __init__(self, project_dir: Path):
        self.path = Path(project_dir) / "hubseg" / "write.lock"
        self._held = False

    def __enter__(self) -> "ProjectWriteLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._is_stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise ConflictError(
                    f"another hubseg command is writing into this project ({self._describe()}); wait for it to "
                    f"finish, or delete {self.path} if that process no longer exists"
                ) from None
            with os.fdopen(fd, "w") as handle:
                handle.write(record)
            self._held = True
            return self
        raise ConflictError(f"could not take the project lock {self.path}; delete it if no hubseg command is running")

    def __exit__(self, *exc) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _describe(self) -> str:
        info = self._read()
        return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')}"

    def _is_stale(self) -> bool:
        info = self._read()
        if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            return False
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def new_backup_stamp(project_dir: Path) -> str:
    """A backup folder name not used yet (runs within one second get a suffix; backups never overwrite)."""
    base = _now()
    root = Path(project_dir) / "hubseg" / "backups"
    stamp, number = base, 1
    while (root / stamp).exists():
        number += 1
        stamp = f"{base}-{number}"
    return stamp


def backup_files(files: list[Path], project_dir: Path, entry_id: str, stamp: str | None = None) -> Path | None:
    """Copy an image's data files to ``<project>/hubseg/backups/<stamp>/<entry_id>/``; None if nothing existed."""
    existing = [Path(f) for f in files if Path(f).is_file()]
    if not existing:
        return None
    target = Path(project_dir) / "hubseg" / "backups" / (stamp or _now()) / str(entry_id)
    target.mkdir(parents=True, exist_ok=True)
    for source in existing:
        shutil.copy2(source, target / source.name)
    return target
