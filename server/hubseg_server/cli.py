"""``hubseg serve`` / ``python -m hubseg_server``: run the HTTP API for the QuPath extension with waitress (production WSGI server).

Secure defaults: binds 127.0.0.1; binding any other address requires a bearer token (``--token-file`` or
``$HUBSEG_TOKEN``, at least 16 characters, file readable only by its owner); image paths from requests
must resolve under a ``--slides-root`` (default: home). Every limit is a flag (docs/server.md, "Limits").
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import signal
import sys
from pathlib import Path

from hubseg.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
STOP_GRACE_S = 30.0  # how long a stop waits for a running job to reach a batch boundary or write its result


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
    parser.add_argument("--max-json-mb", type=int, default=16,
                        help="largest accepted JSON body in MiB (default 16)")
    parser.add_argument("--max-json-values", type=int, default=2_000_000,
                        help="most arrays/objects/elements in one JSON body (default 2000000)")
    parser.add_argument("--max-tiles", type=int, default=None,
                        help="most tiles one detection may plan at the model's pixel size (default 60000)")
    parser.add_argument("--max-image-mp", type=int, default=150,
                        help="largest flat PNG/JPEG slide in megapixels; these are decoded whole (default 150)")
    parser.add_argument("--max-connections", type=int, default=200,
                        help="most open HTTP connections at once (default 200)")
    parser.add_argument("--client-timeout", type=int, default=30,
                        help="seconds an idle or stalled connection is kept open (default 30)")
    parser.add_argument("--keep-results-days", type=float, default=30,
                        help="delete detection results older than this many days; 0 keeps them forever (default 30)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="log detail on stderr and in DATA_DIR/logs/server.log (default info)")
    parser.add_argument("--make-token", default=None, metavar="FILE",
                        help="write a new random token to FILE (mode 0600, never overwritten) and exit")


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


def make_token(path: str) -> int:
    from hubseg_server.settings import make_token_file

    try:
        target = make_token_file(path)
    except FileExistsError:
        raise InvalidInputError(f"--make-token: {path} already exists; remove it first or choose another file") from None
    except OSError as error:
        raise InvalidInputError(f"--make-token: cannot create {path}: {error.strerror}") from None
    print(f"wrote a new token to {target} (mode 0600); start the server with: hubseg serve --token-file {target}")
    return 0


def _check_positive(args: argparse.Namespace) -> None:
    names = ("threads", "max_request_mb", "max_json_mb", "max_json_values", "max_image_mp", "max_connections",
             "client_timeout")
    bad = [n for n in names if getattr(args, n) < 1]
    bad += [n for n in ("torch_threads", "max_tiles") if getattr(args, n) is not None and getattr(args, n) < 1]
    if bad:
        raise InvalidInputError(f"--{bad[0].replace('_', '-')} must be >= 1, got {getattr(args, bad[0])}")
    if args.keep_results_days < 0:
        raise InvalidInputError(f"--keep-results-days must be >= 0 (0 keeps results forever), got {args.keep_results_days}")


def run(args: argparse.Namespace) -> int:
    from hubseg.limits import DEFAULT_MAX_TILES
    from hubseg.paths import data_dir
    from hubseg_server.settings import Settings, read_token
    from hubseg_server.wsgi import ServerLimits

    if args.make_token:
        return make_token(args.make_token)
    host = DEFAULT_HOST if args.host == "localhost" else args.host
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be between 0 and 65535, got {args.port}")
    _check_positive(args)
    try:
        token = read_token(args.token_file)
    except (OSError, ValueError) as error:
        message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InvalidInputError(f"token: {message}") from None
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
        data_dir=data_dir(args.data_dir),  # one-line InvalidInputError if it cannot be created or written
        slides_roots=roots,
        token=token,
        device=args.device,
        max_content_length=args.max_request_mb * 1024 * 1024,
        max_json_bytes=args.max_json_mb * 1024 * 1024,
        max_json_values=args.max_json_values,
        max_image_pixels=args.max_image_mp * 1_000_000,
        max_tiles=args.max_tiles or DEFAULT_MAX_TILES,
        keep_results_days=args.keep_results_days,
        torch_threads=args.torch_threads,
    )
    limits = ServerLimits(threads=args.threads, max_connections=args.max_connections,
                          client_timeout_s=args.client_timeout)
    return serve(settings, host, args.port, limits=limits, log_level=args.log_level)


def _port_taken(host: str, port: int) -> int:
    from hubseg_server.wsgi import describe_port_holder

    holder = describe_port_holder(url_for("127.0.0.1" if host in ("0.0.0.0", "::") else host, port))
    who = f"{holder} already runs there" if holder else "another program uses it"
    print(f"hubseg serve: error: port {port} on {host} is taken ({who}); use --port N (0 = any free port) "
          "or stop the other server", file=sys.stderr)
    return 2


def serve(settings, host: str, port: int, limits=None, log_level: str = "info") -> int:
    """Run until SIGINT/SIGTERM. Prints ``hubseg server listening on URL`` as the first stdout line."""
    from hubseg_server import create_app
    from hubseg_server.logs import setup_logging
    from hubseg_server.wsgi import ServerLimits, is_address_in_use, make_server

    limits = limits or ServerLimits()
    log_file = setup_logging(settings.data_dir, log_level)
    # the worker thread runs Python-heavy stitching; a shorter GIL switch interval keeps health answers prompt
    sys.setswitchinterval(0.001)
    # the worker starts only once the port is bound: a server refused for a taken port runs no queued job
    app = create_app(dataclasses.replace(settings, start_worker=False))
    try:
        server = make_server(app, host, port, limits, settings.max_content_length)
    except OSError as error:
        if is_address_in_use(error):
            return _port_taken(host, port)
        raise InvalidInputError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    actual_port = server.effective_port
    print(f"hubseg server listening on {url_for(host, actual_port)}", flush=True)
    print(
        f"data dir {settings.data_dir}; slides roots {', '.join(map(str, settings.slides_roots))}; "
        f"auth {'bearer token' if settings.token else 'off (loopback only)'}; log {log_file}",
        flush=True,
    )
    logging.getLogger("hubseg_server").info(
        "listening on %s (max tiles %d, JSON %d MiB, requests %d MiB, %d connections, client timeout %d s)",
        url_for(host, actual_port), settings.max_tiles, settings.max_json_bytes >> 20,
        settings.max_content_length >> 20, limits.max_connections, limits.client_timeout_s,
    )
    if settings.start_worker:  # after the URL line (the first line is the contract); requests queue meanwhile
        app.extensions["hubseg"].start_background()

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        services = app.extensions["hubseg"]
        # the running job stops at its next batch; one past its tiles finishes and writes its result
        services.worker.stop(timeout=STOP_GRACE_S)
        if services.housekeeper is not None:
            services.housekeeper.stop()
        server.close()
        logging.getLogger("hubseg_server").info("stopped")
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
