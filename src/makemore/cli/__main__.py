"""``python -m makemore.cli`` runs the command line."""

import sys

from makemore.cli import main

sys.exit(main())
