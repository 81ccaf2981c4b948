"""A server process freezes start-up's objects and, from then to its cleanup, what survives the
collector's older generations (api/server.py, projections/collector.py's FrozenSurvivors)."""

from __future__ import annotations

import gc

import pytest
from aiohttp import web

from runlog.api import keys, server


async def test_the_server_freezes_start_up_then_each_collection_s_survivors_until_cleanup():
    app = web.Application()
    frozen_before = gc.get_freeze_count()
    gc.disable()  # only this test's collections: an automatic one would freeze too
    context = server._frozen_survivors(app)  # the server's last cleanup context
    try:
        await anext(context)
        assert gc.get_freeze_count() > frozen_before
        policy = app[keys.FROZEN_SURVIVORS]
        assert policy._collected in gc.callbacks
        gc.collect()
        assert policy.freezes == 1
        with pytest.raises(StopAsyncIteration):
            await anext(context)
        assert policy._collected not in gc.callbacks
    finally:
        gc.enable()
        if keys.FROZEN_SURVIVORS in app:
            app[keys.FROZEN_SURVIVORS].uninstall()
        gc.unfreeze()
