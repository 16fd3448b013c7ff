"""``python -m fuzz run|power ...``: see :mod:`fuzz.cli` and :mod:`fuzz.power`."""
import sys

from fuzz.cli import main

sys.exit(main())
