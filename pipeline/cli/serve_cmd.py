"""``recloop serve``: the HTTP API v1 and the web console, one stateless process."""

from __future__ import annotations

import ipaddress
import logging

import click

from pipeline.config import Settings

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(settings: Settings, host: str) -> tuple[str, str | None]:
    """The address to bind and, when it differs from ``host``, why.

    Without an API key anyone who reaches the port could read lists and forget users, so
    the server then binds 127.0.0.1 whatever was asked.
    """
    if settings.api_read_key or settings.api_admin_key or is_loopback(host):
        return host, None
    why = (
        f"no API key configured (RECLOOP_API_READ_KEY / RECLOOP_API_ADMIN_KEY): binding "
        f"127.0.0.1 instead of {host}"
    )
    return "127.0.0.1", why


def host_warning(settings: Settings, bound: str) -> str | None:
    """A warning when a public bind would still answer only loopback ``Host`` names.

    >>> host_warning(Settings(), "127.0.0.1") is None
    True
    >>> "RECLOOP_API_ALLOWED_HOSTS" in host_warning(Settings(), "0.0.0.0")
    True
    """
    from pipeline.serve.guard import allowed_hosts

    names = allowed_hosts(settings.api_allowed_hosts)
    if is_loopback(bound) or names is None or not names <= LOOPBACK_NAMES:
        return None
    return (
        f"listening on {bound} but answering only Host names {', '.join(sorted(names))}: "
        "set RECLOOP_API_ALLOWED_HOSTS to the names clients use (see README)"
    )


@click.command()
@click.option("--host", envvar="RECLOOP_API_HOST", show_envvar=True, default=None,
              help="Bind address [default: 127.0.0.1].")  # fmt: skip
@click.option("--port", envvar="RECLOOP_API_PORT", show_envvar=True, type=int, default=None,
              help="Port [default: 8000].")  # fmt: skip
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(host: str | None, port: int | None, log_level: str) -> None:
    """Serve the HTTP API v1 (/v1/..., /openapi.json) and the live console (/)."""
    import uvicorn

    from pipeline.serve.app import create_api

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_level != "debug":  # client libraries log every connection and request at INFO
        for noisy in ("httpx",):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    bound, why = bind_host(settings, settings.api_host)
    if why:
        click.echo(f"recloop serve: {why}", err=True)
    elif not (settings.api_read_key or settings.api_admin_key):
        click.echo(
            "recloop serve: no API key configured; listening on loopback only "
            "(set RECLOOP_API_READ_KEY / RECLOOP_API_ADMIN_KEY to serve other hosts)",
            err=True,
        )
    warning = host_warning(settings, bound)
    if warning:
        click.echo(f"recloop serve: {warning}", err=True)
    shown = f"[{bound}]" if ":" in bound else bound
    click.echo(
        f"recloop serve: console http://{shown}:{settings.api_port}/ , "
        f"API http://{shown}:{settings.api_port}/v1 , OpenAPI /openapi.json"
    )
    uvicorn.run(
        create_api(settings),
        host=bound,
        port=settings.api_port,
        log_level=log_level,
        access_log=False,  # ours logs route templates, never paths with user ids
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
