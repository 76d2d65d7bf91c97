"""``python -m hdsl`` runs the command line."""

import sys

from .workflow.cli import main

sys.exit(main())
