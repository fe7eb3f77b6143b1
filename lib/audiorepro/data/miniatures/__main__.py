"""``python -m audiorepro.data.miniatures build [--out DIR] [--only NAME ...] [--force]``."""
import sys

from . import main

sys.exit(main())
