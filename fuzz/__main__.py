"""``python -m fuzz run ...``: see :mod:`fuzz.cli`."""
import sys

from fuzz.cli import main

sys.exit(main())
