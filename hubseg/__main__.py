import sys

from hubseg.cli import main

sys.exit(main())
