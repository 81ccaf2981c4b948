"""Rendering runlog's pages: one Jinja2 environment over the package's templates, HTML-escaped
everywhere, and the filters the templates share (times, durations, JSON)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from .. import keys
from ..prefect_ui import entry_path

if TYPE_CHECKING:  # imported when a page is first rendered, not by every process that builds the app
    import jinja2

_json = msgspec.json.Encoder(order="sorted")


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _pretty_json(value: Any) -> str:
    return msgspec.json.format(_json.encode(value), indent=2).decode()


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runlog.api.pages", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    env.filters.update(when=_when, seconds=_seconds, pretty_json=_pretty_json)
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def page(request: web.Request, name: str, *, status: int = 200, **context: Any) -> web.Response:
    """A whole page (or a fragment) as text/html. Every page links Prefect's UI where this server
    serves it (``prefect_ui``: its serve base, or None when it is off or not installed)."""
    prefect_ui = entry_path(request.config_dict[keys.SETTINGS])
    return web.Response(text=render(name, prefect_ui=prefect_ui, **context), status=status, content_type="text/html")
