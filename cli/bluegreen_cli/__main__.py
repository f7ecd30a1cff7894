"""``python -m bluegreen_cli``: the same as the ``bluegreen`` console script."""

import sys

from bluegreen_cli.main import main

sys.exit(main())
