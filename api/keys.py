"""Typed application keys: everything a handler may reach through ``request.app``."""

from __future__ import annotations

import weakref

from aiohttp import web

from runlog.commands.clock import Clock
from runlog.commands.csrf import CsrfKeys
from runlog.commands.integrity import KnownIds
from runlog.commands.encryption import Keyring
from runlog.commands.runner import ServiceRunner
from runlog.eventstore import EventStore
from runlog.notifier.dispatcher import Dispatcher
from runlog.projections.cache import ViewCache
from runlog.projections.collector import FrozenSurvivors

from .notifier import NotifierParts
from .settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
REGISTER_BLOCKS: web.AppKey[bool] = web.AppKey("register_blocks", bool)
"""Whether this app registers Prefect's built-in block types at start (a server, not the CLI's app)."""
STORE: web.AppKey[EventStore] = web.AppKey("store", EventStore)  # type: ignore[type-abstract]
MAX_BODY_BYTES: web.AppKey[int] = web.AppKey("max_body_bytes", int)
WEBSOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("websockets", weakref.WeakSet)
VIEW_CACHE: web.AppKey[ViewCache] = web.AppKey("view_cache", ViewCache)
# What every handler and service reads as "now"; tests give the app a ManualClock.
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
KNOWN_FLOWS: web.AppKey[KnownIds] = web.AppKey("known_flows", KnownIds)
SERVICES: web.AppKey[ServiceRunner] = web.AppKey("services", ServiceRunner)
# The notifier's sender and channels when this app sends notifications, else None; and the
# dispatcher it runs (None when it does not), which routes wake after replaying a delivery.
NOTIFIER: web.AppKey[NotifierParts | None] = web.AppKey("notifier")
DISPATCHER: web.AppKey[Dispatcher | None] = web.AppKey("dispatcher")
# The cipher of block documents (RUNLOG_SERVER_ENCRYPTION_KEY or the database's own key).
KEYRING: web.AppKey[Keyring] = web.AppKey("keyring", Keyring)
# The signing key of CSRF tokens (commands/csrf.py), read from the database on first use.
CSRF_KEYS: web.AppKey[CsrfKeys] = web.AppKey("csrf_keys", CsrfKeys)
# A server process's collector policy (api/server.py), from start-up to cleanup.
FROZEN_SURVIVORS: web.AppKey[FrozenSurvivors] = web.AppKey("frozen_survivors", FrozenSurvivors)
