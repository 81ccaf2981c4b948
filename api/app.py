"""The aiohttp application factory: wires settings, the event store and every route module.

Resources live in cleanup contexts, opened in dependency order when the app starts and
closed in reverse when it stops; handlers reach them through the typed keys in api/keys.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import weakref

import structlog
from aiohttp import WSCloseCode, web

from runlog.commands.clock import Clock, system_clock
from runlog.commands.csrf import CsrfKeys
from runlog.commands.projection_services import event_feed_service, run_history_service
from runlog.commands.integrity import KnownIds
from runlog.commands.block_catalogue import register_builtin_blocks
from runlog.commands.cancellation_cleanup import cancellation_cleanup_service
from runlog.commands.late_runs import late_runs_service
from runlog.commands.retention import retention_service
from runlog.commands.lease_expiry import lease_expiry_service
from runlog.commands.pause_expirations import pause_expirations_service
from runlog.commands.workers import work_pool_status_service
from runlog.commands.scheduler import scheduler_service
from runlog.commands.encryption import Keyring
from runlog.commands.runner import ServiceRunner
from runlog.eventstore import SchemaBehind, mask_url, open_store
from runlog.projections.cache import ViewCache
from runlog.projections.rebuild import RebuildBusy, rebuild_outdated
from runlog.projections.registry import inline_projections

from . import keys, metrics, pages, prefect_ui, security
from .logging import quiet_malformed_requests
from .middleware import edge
from .notifier import NotifierParts, default_parts, notifier_services
from .routing import fixed_paths_win
from .routes import admin, concurrency, docs, events, flow_runs, flows, history, log_import, logs, run_filters, task_runs
from .routes import (
    artifacts, automations, blocks, channels, deliveries, deployments, events_out, flow_run_inputs, run_ids,
    projections, ui, variables, work_pools, worker_channel,
)
from .routes import ui_pages

log = structlog.get_logger("runlog.api")

# run_filters and history before flow_runs/task_runs: "/flow_runs/filter" must not be taken for an id.
ROUTE_MODULES = (
    admin, flows, run_filters, history, flow_runs, flow_run_inputs, task_runs, events, logs, concurrency, log_import,
    run_ids, variables, artifacts, blocks, events_out, automations, deliveries, channels, deployments, work_pools,
    worker_channel, projections, ui, ui_pages, docs,
)


def create_app(  # type: ignore[no-untyped-def]
    settings, *, clock: Clock = system_clock, notifier: NotifierParts | None = None, standing: bool = True,
) -> web.Application:
    """The app. It sends notifications (when RUNLOG_NOTIFIER_ENABLED) with ``notifier``'s sender
    and channels, else the default ones.

    ``standing=False`` is the in-process app of the CLI and of `runlog run`: it serves one
    command or one flow and leaves a standing server's duties to it: it sends no notifications
    and does not register Prefect's built-in block types (RUNLOG_SERVER_BLOCKS_REGISTER_ON_START),
    so it appends nothing of its own at start."""
    ui = prefect_ui.create(settings)
    # The edge checks run inside the error boundary and log line (api/middleware.py's ``edge``), so
    # their answers are logged and counted. The auth string is checked before anything else a
    # request could learn from (a CSRF refusal); the UI answers only what no route matched.
    auth = [security.authentication(settings.server_api_auth_string)] if settings.server_api_auth_string else []
    csrf = [security.csrf_protection(tokens=settings.server_api_csrf_protection_enabled)]
    checks = [*auth, *csrf] + ([prefect_ui.fallback(ui)] if ui is not None else [])
    observe = metrics.observe_request if settings.metrics_enabled else None
    app = web.Application(middlewares=[edge(checks, observe)], client_max_size=settings.server_max_body_size)
    app.on_response_prepare.append(security.security_headers(settings))
    app[keys.CSRF_KEYS] = CsrfKeys()
    quiet_malformed_requests()  # a request aiohttp cannot parse is the client's error: one INFO line
    app[keys.SETTINGS] = settings
    app[keys.MAX_BODY_BYTES] = settings.server_max_body_size
    app[keys.WEBSOCKETS] = weakref.WeakSet()
    app[keys.VIEW_CACHE] = ViewCache()
    app[keys.CLOCK] = clock
    app[keys.REGISTER_BLOCKS] = standing and settings.server_blocks_register_on_start
    app[keys.KNOWN_FLOWS] = KnownIds()
    app[keys.KEYRING] = Keyring(settings.server_encryption_key)
    sending = settings.notifier_enabled and standing
    app[keys.NOTIFIER] = (notifier or default_parts(settings, app[keys.KEYRING])) if sending else None
    app.on_shutdown.append(_close_websockets)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_services)  # needs the store: after it, so it stops first
    # The root app's middleware also wraps the sub-app's handlers, so it is installed once.
    api = web.Application(client_max_size=settings.server_max_body_size)
    for module in ROUTE_MODULES:
        api.add_routes(module.routes)
    fixed_paths_win(api)  # PATCH /flow_runs/filter is a 405, not a flow run named "filter"
    app.add_subapp("/api", api)
    app.add_routes(docs.root_routes)  # /docs, as Prefect serves it: a redirect to /api/docs
    app.add_routes(pages.routes)  # runlog's own pages, /runlog/ (api/pages)
    if settings.metrics_enabled:  # else GET /metrics is a 404 like any unknown path
        app.add_routes(metrics.routes)
    return app


async def _close_websockets(app: web.Application) -> None:
    """Websockets stay open indefinitely; on shutdown, tell clients to reconnect elsewhere.

    The Prefect client re-sends events the server has not confirmed, so nothing is lost."""
    for ws in list(app[keys.WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    log.info("opening_database", url=mask_url(settings.database_url), migrate=settings.migrate_on_start)
    projections = inline_projections(app[keys.VIEW_CACHE])
    store = open_store(settings.database_url, migrate=settings.migrate_on_start, projections=projections)
    try:
        await store.open()
    except SchemaBehind as exc:  # only raised when not migrating: say which setting chose that
        raise exc.because("RUNLOG_DATABASE_MIGRATE_ON_START is false") from None
    async with store:  # already open; closes it
        app[keys.STORE] = store
        # A projection whose fold changed since its tables were built is rebuilt before serving
        # (beside its live tables, so another process serving meanwhile reads the old view).
        while True:
            try:
                await rebuild_outdated(store)
                break
            except RebuildBusy:  # another process is rebuilding them: serve once it has
                log.info("waiting_for_projection_rebuild")
                await asyncio.sleep(1.0)
        if app[keys.REGISTER_BLOCKS]:
            # Prefect's built-in blocks, as its server registers them at start (idempotent).
            registered = await register_builtin_blocks(store, clock=app[keys.CLOCK])
            log.info("builtin_blocks_registered", types=registered.types_created, schemas=registered.schemas_created,
                     types_updated=registered.types_updated, skipped=list(registered.skipped))
        yield
    log.info("database_closed")


def background_services(app: web.Application) -> list:
    """Every loop the server runs, each a step on the one service runner."""
    store, settings, cache = app[keys.STORE], app[keys.SETTINGS], app[keys.VIEW_CACHE]
    services = [lease_expiry_service(store), event_feed_service(store), run_history_service(store)]
    if settings.services_late_runs_enabled:
        services.append(late_runs_service(
            store, interval=settings.services_late_runs_loop_seconds,
            after_seconds=settings.services_late_runs_after_seconds, cache=cache,
        ))
    if settings.services_pause_expirations_enabled:
        services.append(pause_expirations_service(
            store, interval=settings.services_pause_expirations_loop_seconds, cache=cache,
        ))
    if settings.services_cancellation_cleanup_enabled:
        services.append(cancellation_cleanup_service(
            store, interval=settings.services_cancellation_cleanup_loop_seconds,
            cancelling_timeout_seconds=settings.services_cancellation_cleanup_cancelling_timeout_seconds, cache=cache,
        ))
    if settings.services_scheduler_enabled:
        services.append(scheduler_service(
            store, interval=settings.services_scheduler_loop_seconds,
            recent_interval=settings.services_scheduler_recent_loop_seconds, cache=cache,
        ))
    if settings.services_foreman_enabled:
        services.append(work_pool_status_service(store, interval=settings.services_foreman_loop_seconds))
    if settings.services_retention_enabled:
        services.append(retention_service(
            store, interval=settings.services_retention_loop_seconds,
            logs_max_age=settings.services_retention_logs_max_age,
            heartbeats_max_age=settings.services_retention_heartbeats_max_age,
        ))
    return services


async def _services(app: web.Application) -> AsyncIterator[None]:
    services = background_services(app)
    parts = app[keys.NOTIFIER]
    dispatcher = None
    if parts is not None:
        dispatcher, notifying = notifier_services(app[keys.SETTINGS], app[keys.STORE], parts, clock=app[keys.CLOCK])
        services += notifying
    app[keys.DISPATCHER] = dispatcher
    try:
        async with ServiceRunner(app[keys.STORE], services, clock=app[keys.CLOCK]) as runner:
            app[keys.SERVICES] = runner
            yield
    finally:
        if dispatcher is not None:  # after the runner: no round can start once it closes
            await dispatcher.aclose()
