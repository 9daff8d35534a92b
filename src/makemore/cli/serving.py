"""The commands that serve a page until Ctrl-C: ``makemore serve`` and ``makemore studio``."""

from __future__ import annotations

import argparse
import sys

from makemore import api
from makemore.cli.options import given_of


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the page and its API until Ctrl-C (exit 0).

    ``--threads`` defaults to one intra-op thread: requests are small (one item scored, at
    most 1,000 rows generated a step at a time) and several may be answered at once, one per
    thread of the server's pool; see ``benchmarks/RESULTS.md#threads-beside-a-busy-core`` for the numbers.
    Off loopback (``--host``), every request needs a token, printed in the URL.
    """
    import secrets

    from makemore import serve  # only this command needs the web server

    config = api.ServeConfig(**given_of(args, api.ServeConfig))
    serve.resolve(config.host, config.port)  # a bad --host or --port before the runs are loaded
    app = serve.load_app(args.runs)
    token = None if serve.is_loopback(config.host) else secrets.token_urlsafe(24)
    try:
        server = serve.make_server(app, config.host, config.port, quiet=config.quiet, token=token)
    except BaseException:
        app.close()
        raise
    if token is not None:
        _note_off_loopback(config.host, "server")
    count = len(app.served)
    print(f"serving {count} run{'s' if count != 1 else ''} at {server.url}", file=sys.stderr)
    for s in app.served:
        dev = s.run.description.metrics.get("dev_loss")
        dev_text = "" if dev is None else f", dev NLL {dev:.4f}"
        params = s.run.description.model.parameters
        print(f"  {s.id}  {s.name}  {s.run.config.model}, {params:,} parameters{dev_text}", file=sys.stderr)
        if s.note:
            print(f"makemore: warning: {s.name}: no new/known marks nor dev/test NLL: {s.note}", file=sys.stderr)
    return _until_ctrl_c(server, "serve", app.close)


def cmd_studio(args: argparse.Namespace) -> int:
    """The studio until Ctrl-C (exit 0): serve's page and API plus a workspace to train in (docs/studio.md)."""
    from makemore import serve, studio  # only this command needs the web server

    config = studio.StudioConfig(**given_of(args, studio.StudioConfig))
    serve.resolve(config.host, config.port)  # a bad --host or --port before the workspace is touched
    workspace, server = studio.make_studio(config)
    if not serve.is_loopback(config.host):
        _note_off_loopback(config.host, "studio")
    print(f"studio of {config.workspace} at {server.url}", file=sys.stderr)
    return _until_ctrl_c(server, "studio", workspace.close)


def _note_off_loopback(host: str, what: str) -> None:
    print(
        f"makemore: note: --host {host}: other machines can reach this {what}; every request needs the token of "
        "the URL below (the default 127.0.0.1 is this machine only)",
        file=sys.stderr,
    )


def _until_ctrl_c(server, what: str, close) -> int:
    """Serve until Ctrl-C (exit 0); then stop the server and ``close()`` what it served.

    uvicorn stops on SIGINT/SIGTERM and raises the signal again once stopped: a KeyboardInterrupt,
    unless SIGINT was ignored when the process started (a child of a process that ignores it,
    e.g. a pytest-xdist worker), when ``serve_forever`` just returns. Either way it stopped.
    """
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        close()
    print(f"makemore: {what}: stopped", file=sys.stderr)
    return 0
