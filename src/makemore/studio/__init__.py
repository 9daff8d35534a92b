"""``makemore studio``: serve's page and API plus a workspace where a list is brought, trained on in a
child process, and its runs generated from, starred and exported (docs/studio.md).

A thin layer like ``makemore.serve``: the library is used through ``makemore.api``.
This package's ``__init__`` stays torch-free (``makemore --help`` reads ``StudioConfig``): the
rest is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from makemore.studio.config import StudioConfig

_LAZY = {
    "UPLOAD_MAX_BYTES": "makemore.studio.core",
    "UPLOAD_MAX_LINES": "makemore.studio.core",
    "Studio": "makemore.studio.core",
    "make_studio": "makemore.studio.server",
    "studio_routes": "makemore.studio.routes",
    "studio_static": "makemore.studio.routes",
}

__all__ = ["StudioConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'makemore.studio' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
