"""``python -m makemore`` (and ``torchrun -m makemore``) runs the command line."""

import sys

from makemore.cli import main

sys.exit(main())
