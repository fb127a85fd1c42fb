"""``python -m pipeline`` runs the ``reviewcause`` command line."""

import sys

from pipeline.entry import main

sys.exit(main())
