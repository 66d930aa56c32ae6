"""Command line: `serve` the API, run the `fake-upstream` to try it offline."""

from __future__ import annotations

import asyncio
import math
import types
import typing
from pathlib import Path
from typing import Any

import click
import uvicorn

from qwen_free_api import __version__
from qwen_free_api.settings import Settings


def _settings_options(command: Any) -> Any:
    """One `serve` flag per settings field, described by the field's own description."""
    for name, field in reversed(Settings.model_fields.items()):
        flag = "--" + name.replace("_", "-")
        kind = _base_type(field.annotation)
        help_text = f"{field.description} [env QFA_{name.upper()}]"
        if kind is bool:
            option = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
        else:
            click_type: Any = {int: int, float: float}.get(kind, str)
            option = click.option(flag, name, type=click_type, default=None, help=help_text)
        command = option(command)
    return command


def _base_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    return origin or annotation


@click.group()
@click.version_option(__version__)
def main() -> None:
    """qwen-free-api: OpenAI-compatible API over your own Qwen web login."""


@main.command()
@_settings_options
def serve(**flags: Any) -> None:
    """Run the API server (settings: flags > environment QFA_* > .env file > defaults)."""
    from qwen_free_api.app import UnsafeSettings, check_settings, create_app
    from qwen_free_api.guard import http_protocol
    from qwen_free_api.observe import configure_logging

    settings = Settings(**{key: value for key, value in flags.items() if value is not None})
    configure_logging(settings)
    try:
        check_settings(settings)
    except UnsafeSettings as error:
        raise click.ClickException(str(error)) from None
    stopping = asyncio.Event()
    config = uvicorn.Config(
        create_app(settings, stopping=stopping),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the app logs one line per request itself
        log_config=None,  # uvicorn's lines go through the root handler, in QFA_LOG_FORMAT
        backlog=4096,
        http=http_protocol(settings),  # header size and header/body time limits (guard.py)
        # Our own grace period ends streams properly; uvicorn's is only the backstop.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout) + 5,
    )
    GracefulServer(config, stopping).run()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, telling the application as soon as a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


@main.group()
def tokens() -> None:
    """Inspect the upstream credentials the server would use."""


@tokens.command("check")
@click.option("--token", "extra", multiple=True, help="Also check this credential (repeatable).")
def tokens_check(extra: tuple[str, ...]) -> None:
    """Check every configured credential against its upstream; exit 1 if any is not live."""
    from qwen_free_api.accounts_report import check_all

    rows = asyncio.run(check_all(Settings(), list(extra)))
    width = max((len(row[1]) for row in rows), default=10)
    for ident, masked, source, state, reason in rows:
        click.echo(f"{ident:12}  {masked:{width}}  {source:8}  {state:11}  {reason}")
    if not rows:
        click.echo("no credentials configured (QFA_TOKENS, QFA_TOKENS_FILE or the admin API)")
    if any(row[3] != "live" for row in rows) or not rows:
        raise SystemExit(1)


@main.command()
@click.option(
    "--token",
    "tokens",
    multiple=True,
    help="Credential to examine (repeatable or comma-separated; cn:/intl: prefixes). "
    "Default: QFA_TOKENS.",
)
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save every raw upstream exchange here, secrets replaced (for a bug report).",
)
@click.option("--json", "machine", is_flag=True, help="Print the report as JSON.")
@click.option("--skip", multiple=True, help="Leave out this check (repeatable), e.g. image.")
def doctor(
    tokens: tuple[str, ...], record: Path | None, machine: bool, skip: tuple[str, ...]
) -> None:
    """Try every capability of each credential against its real upstream; exit 1 if any broke.

    Checks: credential, chat, stream, thinking, search, upload, image, cleanup. This talks to
    the real Qwen backend with your credential (QFA_*_BASE_URL settings apply).
    """
    from qwen_free_api.doctor import command

    raise SystemExit(command(list(tokens), record, machine, skip))


@main.command("fake-upstream")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8900, show_default=True, help="Port to listen on.")
@click.option(
    "--sign-mode",
    type=click.Choice(["off", "soft", "hard", "canned"]),
    default="off",
    show_default=True,
    help="How strictly the fake cn backend checks request signatures.",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Serve a `doctor --record` directory back instead (same method+path, in order).",
)
def fake_upstream(host: str, port: int, sign_mode: str, replay: Path | None) -> None:
    """Serve a fake of both Qwen web backends, to try the server offline.

    Point QFA_CN_BASE_URL, QFA_CN_API_BASE_URL, QFA_CN_SEC_BASE_URL and QFA_INTL_BASE_URL
    at http://HOST:PORT. Any cn ticket works (one starting with `bad` is refused); intl needs
    a JWT-shaped token whose `exp` is in the future.
    """
    if replay is not None:
        from qwen_free_api.testing.replay import run_replay

        run_replay(host, port, replay)
        return
    from qwen_free_api.testing import run_fake

    run_fake(host, port, sign_mode=sign_mode)
