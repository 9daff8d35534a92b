"""makemore: character-level language models that make more of what you give them."""

import time as _time

__version__ = "0.2.0"
IMPORTED_AT = _time.perf_counter()  # the CLI's time budget (train --time) counts from here: imports take seconds
