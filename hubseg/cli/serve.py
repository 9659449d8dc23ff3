"""``hubseg serve``: run the HTTP server for the QuPath extension.

The server owns its options and launcher (``hubseg_server.cli``, also ``python -m hubseg_server``); this
module only hands the subcommand over. It is the one import from the library into the server package
(the import contract in pyproject.toml allows exactly this edge).
"""

from __future__ import annotations

from hubseg_server.cli import register, run

__all__ = ["register", "run"]
