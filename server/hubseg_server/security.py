"""Bearer-token auth (constant-time) and the slides-root check for image paths from requests."""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from hubseg_server.errors import ApiError, bad_request

PUBLIC_ENDPOINTS = {"health.health", "health.openapi"}


def check_bearer(header: str | None, token: str) -> None:
    """Raise 401 unless ``header`` is ``Bearer <token>``; compares in constant time."""
    supplied = ""
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            supplied = value.strip()
    # compare_digest on bytes: its time depends only on the length of the supplied value
    if not hmac.compare_digest(supplied.encode("utf-8"), token.encode("utf-8")):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' with the token the "
            "server was started with (--token-file or HUBSEG_TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="hubseg"'},
        )


def resolve_slide_path(raw: object, roots: tuple[Path, ...], field: str = "image.path") -> Path:
    """The real path of an image from a request, which must lie under one of ``roots``.

    Symlinks are followed before the check (a link inside a root pointing outside is refused), ``..`` is
    resolved, and the root check happens before any existence check so nothing outside the roots leaks.
    """
    if not isinstance(raw, str) or not raw:
        raise bad_request(f"'{field}' must be a non-empty string (an absolute path to the slide)", field)
    if "\x00" in raw or len(raw) > 4096:
        raise bad_request(f"'{field}' is not a valid path", field)
    if not is_utf8(raw):
        raise bad_request(f"'{field}' contains a lone UTF-16 surrogate (\\ud800-\\udfff); send the path as UTF-8", field)
    if not os.path.isabs(raw):
        raise ApiError(422, "invalid_input", f"'{field}' must be an absolute path, got {raw!r}", field)
    real = Path(os.path.realpath(raw))
    for root in roots:
        try:
            if os.path.commonpath([str(real), str(root)]) == str(root):
                return real
        except ValueError:  # different drives on Windows
            continue
    allowed = ", ".join(str(r) for r in roots)
    raise ApiError(
        403,
        "forbidden_path",
        f"'{field}' resolves outside the allowed slides roots ({allowed}); move the slide under one of them or "
        "restart the server with --slides-root pointing at the slide's folder",
        field,
    )


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (JSON escapes can carry lone surrogates, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_regular_file(path: Path, field: str = "image.path") -> Path:
    """``path`` must exist and be a regular file: a FIFO, device or folder is refused *before* it is opened
    (opening a FIFO blocks the request thread forever)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ApiError(404, "not_found", f"'{field}': no such file {path.name!r}; check the path", field) from None
    except OSError as error:
        raise ApiError(422, "invalid_input", f"'{field}': cannot access {path.name!r} ({error.strerror})", field) from None
    if stat.S_ISDIR(mode):
        raise ApiError(415, "unsupported_format", f"'{field}' ({path.name}) is a folder, not an image file", field)
    if not stat.S_ISREG(mode):
        raise ApiError(422, "invalid_input", f"'{field}' ({path.name}) is not a regular file (a FIFO, socket or "
                       "device); name an image file", field)
    return path
