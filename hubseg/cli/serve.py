"""``hubseg serve``: run the HTTP API for the QuPath extension with waitress (production WSGI server).

Secure defaults: binds 127.0.0.1; binding any other address requires a bearer token (``--token-file`` or
``$HUBSEG_TOKEN``); image paths from requests must resolve under a ``--slides-root`` (default: home).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from hubseg.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to bind (default 127.0.0.1; any other address requires a token)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="TCP port (default 8765; 0 picks a free port, printed on the first stdout line)")
    parser.add_argument("--data-dir", default=None, help="data directory (default $HUBSEG_DATA_DIR or ~/.hubseg)")
    parser.add_argument("--slides-root", action="append", default=None, metavar="DIR",
                        help="folder under which slide paths are allowed (repeatable; default: your home folder)")
    parser.add_argument("--token-file", default=None,
                        help="file whose first line is the bearer token (else $HUBSEG_TOKEN; none = no auth)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--threads", type=int, default=8, help="HTTP worker threads (default 8)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="CPU threads for inference/training (default: torch's choice)")
    parser.add_argument("--max-request-mb", type=int, default=256,
                        help="largest accepted request body in MiB, uploads included (default 256)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the HTTP server for the QuPath extension",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def run(args: argparse.Namespace) -> int:
    from hubseg.paths import data_dir
    from hubseg_server.settings import Settings, read_token

    host = DEFAULT_HOST if args.host == "localhost" else args.host
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be between 0 and 65535, got {args.port}")
    if args.threads < 1 or (args.torch_threads is not None and args.torch_threads < 1) or args.max_request_mb < 1:
        raise InvalidInputError("--threads, --torch-threads and --max-request-mb must be >= 1")
    try:
        token = read_token(args.token_file)
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"cannot read --token-file: {error}") from None
    if not is_loopback(host) and not token:
        print(
            f"hubseg serve: refusing to bind {host} without a token: anyone on the network could use the server; "
            "pass --token-file FILE or set HUBSEG_TOKEN, or bind 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    roots = tuple(Path(r).expanduser() for r in (args.slides_root or [str(Path.home())]))
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise InvalidInputError(f"--slides-root must be existing folders; not found: {', '.join(missing)}")
    settings = Settings(
        data_dir=data_dir(args.data_dir),
        slides_roots=roots,
        token=token,
        device=args.device,
        max_content_length=args.max_request_mb * 1024 * 1024,
        torch_threads=args.torch_threads,
    )
    return serve(settings, host, args.port, threads=args.threads)


def serve(settings, host: str, port: int, threads: int = 8) -> int:
    """Run until SIGINT/SIGTERM. Prints ``hubseg server listening on URL`` as the first stdout line."""
    from waitress.server import create_server

    from hubseg_server import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # the worker thread runs Python-heavy stitching; a shorter GIL switch interval keeps health answers prompt
    sys.setswitchinterval(0.001)
    app = create_app(settings)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="hubseg",
        # bodies over the app limit get a JSON 413 from Flask; only beyond twice that does waitress itself
        # answer (plain-text 413) without buffering the whole body
        max_request_body_size=2 * settings.max_content_length + 1024 * 1024,
        clear_untrusted_proxy_headers=True,
    )
    actual_port = server.effective_port
    print(f"hubseg server listening on {url_for(host, actual_port)}", flush=True)
    print(
        f"data dir {settings.data_dir}; slides roots {', '.join(map(str, settings.slides_roots))}; "
        f"auth {'bearer token' if settings.token else 'off (loopback only)'}",
        flush=True,
    )

    def _stop(signum, frame):  # running jobs are marked failed ("server restarted") at the next start
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["hubseg"].worker.stop(timeout=2.0)
        server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m hubseg_server``), same options as ``hubseg serve``."""
    from hubseg.errors import HubsegError

    parser = argparse.ArgumentParser(prog="hubseg serve", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HubsegError as error:
        print(f"hubseg serve: error: {error}", file=sys.stderr)
        return 2
