"""``python -m hubseg_server [options]`` = ``hubseg serve [options]``."""

import sys

from hubseg_server.cli import main

sys.exit(main())
