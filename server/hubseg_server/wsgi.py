"""The waitress server around the app, with its limits set deliberately (see docs/server.md, "Limits").

waitress defaults suit a server behind a reverse proxy; hubseg is usually run directly, so:

- ``connection_limit`` (``--max-connections``, default 200): open connections at once; beyond it waitress
  stops accepting until some close. ``channel_timeout`` (``--client-timeout``, default 30 s): a connection
  with no complete request that sends nothing for that long is closed (idle or half-open sockets cannot
  hold the server); ``cleanup_interval`` (5 s, at most half the timeout) is how often that is checked.
- ``max_request_header_size`` 64 KiB (request line + headers); ``inbuf_overflow`` 1 MiB (larger bodies are
  spooled to a temporary file while they arrive); ``max_request_body_size`` twice ``--max-request-mb``
  (bodies between the app limit and that get the app's JSON 413; beyond it waitress answers itself).
- Chunked bodies: waitress accumulates a chunk-size line (and the trailer) without bound and rescans it on
  every read, so an unterminated size line costs CPU quadratically. ``BoundedChunkedReceiver`` refuses
  a size line over 4 KiB and a trailer over 64 KiB with 400.
- The replies waitress writes itself, before the app sees a request (400 malformed request, 413 body over
  ``max_request_body_size``, 431 headers too large, 500), are JSON ``{"error": {"code", "message"}}`` like
  the app's (``JsonErrorTask``).
"""

from __future__ import annotations

import errno
import json
import urllib.request
from dataclasses import dataclass

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver
from waitress.task import ErrorTask
from waitress.utilities import BadRequest

MAX_CHUNK_LINE = 4096
MAX_TRAILER = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 200
DEFAULT_CLIENT_TIMEOUT_S = 30
MAX_HEADER_BYTES = 64 * 1024
INBUF_OVERFLOW = 1024 * 1024


class BoundedChunkedReceiver(ChunkedReceiver):
    """waitress's chunked decoder with bounded control lines and trailers (400 beyond them)."""

    def received(self, s):
        consumed = super().received(s)
        if not self.completed and self.error is None:
            if len(self.control_line) > MAX_CHUNK_LINE:
                self.error = BadRequest(f"chunk size line longer than {MAX_CHUNK_LINE} bytes")
            elif len(self.trailer) > MAX_TRAILER:
                self.error = BadRequest(f"chunked trailer longer than {MAX_TRAILER} bytes")
            if self.error is not None:
                self.all_chunks_received = True
                self.control_line = self.trailer = b""
        return consumed


class BoundedParser(HTTPRequestParser):
    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        if self.chunked and isinstance(self.body_rcv, ChunkedReceiver):
            self.body_rcv = BoundedChunkedReceiver(self.body_rcv.buf)


WAITRESS_ERROR_CODES = {400: "bad_request", 413: "payload_too_large", 431: "headers_too_large",
                        500: "internal_error"}


class JsonErrorTask(ErrorTask):
    """waitress's own error replies as the API's JSON error body instead of text/plain."""

    def execute(self):
        error = self.request.error
        message = f"{error.reason}: {error.body}" if error.body else error.reason
        body = json.dumps({"error": {"code": WAITRESS_ERROR_CODES.get(error.code, "bad_request"),
                                     "message": message}}).encode("utf-8")
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class BoundedChannel(HTTPChannel):
    parser_class = BoundedParser
    error_task_class = JsonErrorTask


@dataclass(frozen=True)
class ServerLimits:
    """The waitress settings ``hubseg serve`` exposes (the rest are constants above)."""

    threads: int = 8
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    client_timeout_s: int = DEFAULT_CLIENT_TIMEOUT_S

    def adjustments(self, max_content_length: int) -> dict:
        return {
            "threads": self.threads,
            "connection_limit": self.max_connections,
            "channel_timeout": self.client_timeout_s,
            "cleanup_interval": max(1, min(5, self.client_timeout_s // 2)),
            "max_request_header_size": MAX_HEADER_BYTES,
            "inbuf_overflow": INBUF_OVERFLOW,
            # bodies over the app limit get a JSON 413 from Flask; only beyond twice that does waitress itself
            # answer (plain-text 413) without buffering the whole body
            "max_request_body_size": 2 * max_content_length + 1024 * 1024,
        }


def make_server(app, host: str, port: int, limits: ServerLimits, max_content_length: int):
    """A waitress server (not yet running) whose connections use :class:`BoundedChannel`.

    Raises ``OSError`` (``errno.EADDRINUSE``) when the port is taken.
    """
    from waitress.server import create_server

    server = create_server(app, host=host, port=port, ident="hubseg", clear_untrusted_proxy_headers=True,
                           **limits.adjustments(max_content_length))
    socket_map = getattr(server, "_map", None) or getattr(server, "map", {})
    for dispatcher in list(socket_map.values()) + [server]:
        if hasattr(dispatcher, "channel_class"):
            dispatcher.channel_class = BoundedChannel
    return server


def is_address_in_use(error: OSError) -> bool:
    return error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))


def describe_port_holder(url: str, timeout: float = 2.0) -> str:
    """What answers ``GET {url}/v1/health``: "a hubseg server (version X, model Y)", or "" if not hubseg."""
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=timeout) as response:  # noqa: S310 (loopback URL)
            health = json.loads(response.read(65536).decode("utf-8"))
    except Exception:
        return ""
    if not isinstance(health, dict) or health.get("api_version") != "v1" or "version" not in health:
        return ""
    return (f"a hubseg server (version {health.get('version')}, active model {health.get('active_model')}, "
            f"{health.get('queue_length')} job(s) queued)")
