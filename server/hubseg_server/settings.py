"""Server settings: one immutable object built by ``hubseg serve`` (or tests) and passed to ``create_app``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hubseg.limits import DEFAULT_MAX_TILES

TOKEN_ENV = "HUBSEG_TOKEN"

DEFAULT_MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # bytes of one request body (uploads included)
DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024  # bytes of one JSON body (a whole-slide label set is a few MiB)
DEFAULT_MAX_JSON_VALUES = 2_000_000  # JSON arrays + objects + commas in one body: bounds the parse's memory
DEFAULT_MAX_UPLOAD_PIXELS = 100_000_000  # pixels of one uploaded region (decompression-bomb guard)
DEFAULT_MAX_IMAGE_PIXELS = 150_000_000  # a flat PNG/JPEG slide is decoded whole (3 B/px) by the worker
DEFAULT_MAX_JSON_VERTICES = 2_000_000  # polygon vertices in one request
DEFAULT_KEEP_RESULTS_DAYS = 30  # detection results older than this are deleted (0 = keep forever)
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Settings:
    """Everything the app needs; nothing here changes after ``create_app``.

    ``slides_roots``: folders under which image paths from requests may resolve (default: the home dir).
    ``token``: bearer token required on every endpoint but health/openapi (``None`` = no auth, loopback only).
    ``start_worker``: tests of pure validation may skip the worker thread.
    """

    data_dir: Path
    slides_roots: tuple[Path, ...] = field(default_factory=lambda: (Path.home(),))
    token: str | None = None
    device: str = "auto"
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    max_upload_pixels: int = DEFAULT_MAX_UPLOAD_PIXELS
    max_vertices: int = DEFAULT_MAX_JSON_VERTICES
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_json_values: int = DEFAULT_MAX_JSON_VALUES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_tiles: int = DEFAULT_MAX_TILES
    max_heavy_requests: int = 2  # large JSON bodies and uploads processed at once (hubseg_server.gate)
    max_heavy_waiting: int = 4  # more of them waiting for a place; beyond: 503 + Retry-After
    keep_results_days: float = DEFAULT_KEEP_RESULTS_DAYS
    start_worker: bool = True
    torch_threads: int | None = None
    shipped_models_dir: Path | None = None  # tests point this at an empty folder

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        roots = tuple(Path(os.path.realpath(Path(r).expanduser())) for r in self.slides_roots)
        object.__setattr__(self, "slides_roots", roots)
        if self.token is not None and not self.token.strip():
            object.__setattr__(self, "token", None)


def read_token(token_file: str | os.PathLike | None) -> str | None:
    """The bearer token from ``token_file`` (first line, stripped), else ``$HUBSEG_TOKEN``, else ``None``.

    Raises ValueError (one line saying how to fix it) for a token shorter than ``MIN_TOKEN_LENGTH`` and,
    on POSIX, for a token file other users can read (like ssh with a private key).
    """
    if token_file:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ValueError(f"token file {token_file} does not exist; create one with `hubseg serve --make-token "
                             f"{token_file}` (or pass --token-file with an existing file)") from None
        token = text.splitlines()[0].strip() if text else ""
        if not token:
            raise ValueError(f"token file {token_file} is empty; put the token on its first line")
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise ValueError(
                f"token file {token_file} is readable by other users (mode {mode & 0o777:o}); "
                f"run `chmod 600 {token_file}` (or create one with `hubseg serve --make-token FILE`)"
            )
        source = f"the token in {token_file}"
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            return None
        source = f"${TOKEN_ENV}"
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{source} has {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
            "(create a strong one with `hubseg serve --make-token FILE`)"
        )
    return token


def make_token_file(path: str | os.PathLike) -> Path:
    """Create ``path`` (mode 0600, never overwriting) holding a new random 43-character token."""
    import secrets

    target = Path(path).expanduser()
    token = secrets.token_urlsafe(32)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return target
