"""hubseg HTTP server: ``create_app(settings)`` builds the Flask app; ``hubseg serve`` runs it with waitress."""

from hubseg_server.settings import Settings


def create_app(settings: Settings):
    from hubseg_server.app import create_app as _create_app

    return _create_app(settings)


__all__ = ["Settings", "create_app"]
