"""``python -m pipeline`` runs the ``reviewcause`` command line."""

import sys

from pipeline.cli import main

sys.exit(main())
