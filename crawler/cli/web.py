"""`newsdedup web`: serve the dashboard (crawler.web) on a loopback port, or elsewhere with auth."""

from __future__ import annotations

import socket

import click

from crawler.cli import Context, common_options


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one clear line saying why there is none."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "the port is in use (another dashboard?)" if exc.errno == 98 else exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}; choose another with --port") from None
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default=None,
              help="Address to listen on (default: [web] host, 127.0.0.1). Any address but loopback needs a "
                   "token or basic auth ([web] token, or user and password).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [web] port, 8788; 0: any free port).")
@click.option("--overrides/--read-only", "overrides", default=None,
              help="Allow split, merge, promote and undo from the dashboard, for authenticated users "
                   "(default: [web] overrides, off).")
@common_options
def web(ctx: Context, host: str | None, port: int | None, overrides: bool | None) -> None:
    """Serve the dashboard: overview, recent duplicates, stories with diffs, the override log, search."""
    import uvicorn

    from crawler.web.app import create_app
    from crawler.web.auth import Credentials, exposure_error

    config = ctx.settings.web
    host = host or config.host
    port = config.port if port is None else port
    allow_overrides = config.overrides if overrides is None else overrides
    credentials = Credentials(token=config.token, user=config.user, password=config.password)
    problem = exposure_error(host, credentials, allow_overrides)
    if problem:
        raise click.ClickException(problem)
    client = ctx.client
    sock = _listen(host, port)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    access = ("token" if credentials.token else "") + (" or " if credentials.token and credentials.user else "") + \
        ("basic auth" if credentials.user else "")
    click.echo(f"newsdedup dashboard on http://{shown}:{bound_port}/ "
               f"({'overrides on' if allow_overrides else 'read-only'}; "
               f"{'sign-in: ' + access if access else 'open to this machine only'}); Ctrl-C stops it")
    app = create_app(ctx.settings, client, credentials=credentials, overrides=allow_overrides)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                           proxy_headers=True, lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


COMMANDS = [web]
