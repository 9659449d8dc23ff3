"""Bearer-token auth (constant-time) and the slides-root check for image paths from requests."""

from __future__ import annotations

import hmac
import os
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
