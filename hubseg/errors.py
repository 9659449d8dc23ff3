"""User-facing errors. Every message says what was wrong and how to fix it.

``code`` is a stable machine-readable identifier; the server maps codes to HTTP
status codes (this package never imports Flask), the CLI prints ``str(error)``
on one line and exits non-zero.
"""


class HubsegError(Exception):
    """Base class for errors caused by the user's input or environment."""

    code = "invalid_request"


class InvalidInputError(HubsegError):
    """A parameter or file has an invalid value (name the field and the valid range)."""

    code = "invalid_input"


class UnsupportedFormatError(HubsegError):
    """An image file cannot be read; the message lists the supported formats."""

    code = "unsupported_format"


class MissingPixelSizeError(HubsegError):
    """The slide has no pixel-size calibration and none was given."""

    code = "missing_pixel_size"


class NotFoundError(HubsegError):
    """A named thing (model, job, label set, file) does not exist; the message lists valid names."""

    code = "not_found"


class ConflictError(HubsegError):
    """The request conflicts with stored state (e.g. a name already taken)."""

    code = "conflict"


class DependencyMissingError(HubsegError):
    """An optional dependency (OpenSlide, paquo/QuPath) is not installed or configured."""

    code = "dependency_missing"


class Cancelled(HubsegError):
    """A long-running operation was cancelled cooperatively."""

    code = "cancelled"
