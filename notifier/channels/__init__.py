"""The nine channel kinds, by Prefect block type slug: each module shapes requests from a
block document's data and reads the answers; ``runlog.notifier.http`` sends them.

``channel_kind`` also accepts the short names the runlog CLI uses (``slack``, ``teams``,
``pagerduty``, ``webhook``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from ..redact import display_url
from . import discord, mattermost, opsgenie, pagerduty, sendgrid, slack, teams, twilio, webhook
from .base import ChannelConfigError, ChannelKind, Context, Message, Outcome, Request, Response, Verdict, url_problem

KINDS: Mapping[str, ChannelKind] = MappingProxyType({
    kind.slug: kind
    for kind in (
        webhook.KIND, slack.KIND, discord.KIND, teams.KIND, mattermost.KIND,
        opsgenie.KIND, pagerduty.KIND, sendgrid.KIND, twilio.KIND,
    )
})
_BY_NAME = {name: kind for kind in KINDS.values() for name in (kind.slug, *kind.aliases)}
# Kinds that can close the alert they raised when the run later completes.
RESOLVABLE: frozenset[str] = frozenset(slug for slug, kind in KINDS.items() if kind.resolvable)


def channel_kind(name: str) -> ChannelKind:
    """The kind called NAME (a block type slug or a short name); ValueError naming the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(k.aliases[0] for k in KINDS.values()))
        raise ValueError(f"unknown channel kind {name!r}; known kinds: {known}") from None


def _sample_requests(channel: ChannelKind, data: Mapping[str, Any], base_url: str | None = None) -> list[Request]:
    """The requests CHANNEL would make for a sample message: what DATA can do, not a send."""
    return channel.build(data, Message("test", "test"), Context(UUID(int=0), datetime.fromtimestamp(0, UTC),
                                                                base_url=base_url))


def check(kind: str, data: Mapping[str, Any]) -> None:
    """Refuse, with a ChannelConfigError naming the field, block data that could never make a
    request (a missing field, an unknown placeholder, a URL that is not http(s)): what a
    channel's save path calls, so a broken channel is refused then rather than dead-lettered
    at its first alert. An unknown KIND is a ValueError."""
    channel = channel_kind(kind)
    try:
        requests = _sample_requests(channel, data)
    except ChannelConfigError:
        raise
    except ValueError:
        raise ChannelConfigError("the channel's URL is malformed") from None
    for request in requests:
        if problem := url_problem(request.url):
            raise ChannelConfigError(problem)


def destination(kind: str, data: Mapping[str, Any], base_url: str | None = None) -> str:
    """Where KIND's requests go, fit to show (``POST https://hooks.slack.com/…``): the scheme
    and host only, since a webhook URL's path is its secret. For ``channel ls`` and inspect."""
    requests = _sample_requests(channel_kind(kind), data, base_url)
    return ", ".join(sorted({f"{r.method} {display_url(r.url)}" for r in requests}))


def secret_values(kind: ChannelKind, data: Mapping[str, Any]) -> Iterator[str]:
    """The values of DATA's secret fields (``field.*`` meaning every value under ``field``)."""
    for name in kind.secret_fields:
        yield from _leaves(data.get(name.removesuffix(".*")))


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


__all__ = [
    "KINDS", "RESOLVABLE", "ChannelConfigError", "ChannelKind", "Context", "Message", "Outcome",
    "Request", "Response", "Verdict", "channel_kind", "check", "destination", "secret_values", "url_problem",
]
