"""``python -m audiorepro.book COMMAND``: see :mod:`audiorepro.book`."""
import sys

from audiorepro.book import main

sys.exit(main())
