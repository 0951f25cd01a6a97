"""``python -m mspwatch.dashboards [--check]``: the same as ``mspwatch dashboards generate``."""

import sys

from mspwatch.dashboards.generate import main

sys.exit(main())
