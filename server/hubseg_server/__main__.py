"""``python -m hubseg_server [options]`` = ``hubseg serve [options]``."""

import sys

from hubseg.cli.serve import main

sys.exit(main())
