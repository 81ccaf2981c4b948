from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from runlog.notifier.http import open_session

from .receiver import Receiver, receiver


@pytest.fixture
async def rcv() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with open_session() as s:
        yield s
