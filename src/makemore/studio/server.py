"""``make_studio``: the studio of a workspace and its server."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from makemore.serve import Server, is_loopback, make_server
from makemore.studio.config import StudioConfig
from makemore.studio.core import Studio
from makemore.studio.routes import UPLOAD_PATHS, studio_routes, studio_static


def make_studio(config: StudioConfig, *, train_args: Sequence[str] | None = None) -> tuple[Studio, Server]:
    """The studio of ``config.workspace`` (created on first use) and its server (not yet serving).

    Off loopback the server asks for a token (in ``Server.url``). The training queue runs from here on;
    ``Studio.close()`` stops it (a running child is interrupted and keeps its checkpoint).

    Args:
        config: the workspace and where to listen.
        train_args: flags that replace a training's ``--time`` (tests: a few steps).
    Raises:
        MakemoreError: the workspace cannot be used; ConfigError: the host or port.
    """
    token = None if is_loopback(config.host) else secrets.token_urlsafe(24)
    new = not Path(config.workspace).expanduser().exists()
    studio = Studio(config.workspace, train_args=train_args, token_required=token is not None)
    try:
        server = make_server(
            studio.app, config.host, config.port, quiet=config.quiet, routes=studio_routes(studio), token=token,
            static=studio_static(), upload_paths=UPLOAD_PATHS,
        )  # fmt: skip
    except BaseException:
        studio.close()
        if new:  # refused (e.g. the port is in use): leave nothing behind
            shutil.rmtree(studio.ws.root, ignore_errors=True)
        raise
    studio.start()
    return studio, server
