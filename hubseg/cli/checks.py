"""Checks the commands run on their arguments before any slow work, each failing with one line naming the flag."""

from __future__ import annotations

import os
import shlex
import stat
import sys
import tempfile
from pathlib import Path

from hubseg.errors import InvalidInputError

def warn(command: str, message: str) -> None:
    """One warning line on stderr, in the same shape as the error lines."""
    print(f"hubseg {command}: warning: {message}", file=sys.stderr)


def pixel_size_option(value, flag: str = "--pixel-size", command: str = "detect") -> float | None:
    """``value`` checked against the plausible range (hubseg.limits); warns outside the tested band."""
    from hubseg.limits import check_pixel_size, pixel_size_warning

    if value is None:
        return None
    number = check_pixel_size(value, flag)
    message = pixel_size_warning(number)
    if message:
        warn(command, f"{flag}: {message}")
    return number


def check_detection_flags(args) -> None:
    """--threshold, --min-area, --batch-size in range, named as the user typed them."""
    threshold = getattr(args, "threshold", None)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InvalidInputError(f"--threshold must be between 0 and 1 (exclusive), e.g. 0.5; got {threshold:g}")
    min_area = getattr(args, "min_area", None)
    if min_area is not None and not min_area >= 0:
        raise InvalidInputError(f"--min-area must be >= 0 µm² (0 keeps every object); got {min_area:g}")
    batch = getattr(args, "batch_size", None)
    if batch is not None and batch < 1:
        raise InvalidInputError(f"--batch-size must be >= 1; got {batch}")


def _missing_parent_hint(folder: Path) -> str:
    return f"create it first: mkdir -p {shlex.quote(str(folder))}"


def check_output_folder(folder: str | os.PathLike, flag: str, create: bool = False) -> Path:
    """A folder hubseg may write into; ``create`` makes it (with parents) when missing, else refuses with the
    ``mkdir -p`` to run. Probed by creating and removing a temporary file, which also catches /proc and
    read-only mounts (and works for root, for whom permission bits say little)."""
    path = Path(folder).expanduser().absolute()
    for ancestor in [path, *path.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise InvalidInputError(f"{flag}: {ancestor} is a file, not a folder; choose another location")
            break
    if not path.exists():
        if not create:
            raise InvalidInputError(f"{flag}: folder {path} does not exist; {_missing_parent_hint(path)}")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInputError(f"{flag}: cannot create folder {path}: {error.strerror or error}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".hubseg-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InvalidInputError(f"{flag}: cannot write to folder {path}: {error.strerror or error}") from None
    return path


def check_output_file(path: str | os.PathLike, flag: str, suffixes: dict | None = None) -> Path:
    """An output file hubseg can write: its folder exists and is writable, it is not a folder or a device,
    and (with ``suffixes``) its suffix names a format hubseg writes. Missing folders are never created
    silently: the error shows the ``mkdir -p`` to run."""
    target = Path(path).expanduser().absolute()
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise InvalidInputError(
            f"{flag}: cannot write {target.name!r}: the suffix must name the picture format, one of "
            f"{', '.join(sorted(suffixes))}"
        )
    if target.exists() or target.is_symlink():
        try:
            mode = target.stat().st_mode
        except OSError as error:
            raise InvalidInputError(f"{flag}: cannot use {target}: {error.strerror or error}") from None
        if stat.S_ISDIR(mode):
            raise InvalidInputError(f"{flag}: {target} is a folder; give a file name inside it")
        if not stat.S_ISREG(mode):
            raise InvalidInputError(f"{flag}: {target} is not a regular file (device, FIFO or socket); choose a file")
    check_output_folder(target.parent, flag)
    return target


def check_distinct(paths: dict[str, Path]) -> None:
    """Two output flags must not name the same file (one would silently replace the other)."""
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        if path in seen:
            raise InvalidInputError(f"{flag} and {seen[path]} name the same file {path}; choose two names")
        seen[path] = flag


def add_training_run_options(parser, activate_help: str = "make the new model active") -> None:
    """The options every training command shares (hubseg train, hubseg adapt)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--activate", action="store_true", help=activate_help)
    parser.add_argument("--data-dir", help="hubseg data directory (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
