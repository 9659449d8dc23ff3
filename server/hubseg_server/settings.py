"""Server settings: one immutable object built by ``hubseg serve`` (or tests) and passed to ``create_app``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "HUBSEG_TOKEN"

DEFAULT_MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # bytes of one request body (uploads included)
DEFAULT_MAX_UPLOAD_PIXELS = 100_000_000  # pixels of one uploaded region (decompression-bomb guard)
DEFAULT_MAX_JSON_VERTICES = 2_000_000  # polygon vertices in one request


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
    """The bearer token from ``token_file`` (first line, stripped), else ``$HUBSEG_TOKEN``, else ``None``."""
    if token_file:
        text = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        token = text.splitlines()[0].strip() if text else ""
        if not token:
            raise ValueError(f"token file {token_file} is empty; put the token on its first line")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None
