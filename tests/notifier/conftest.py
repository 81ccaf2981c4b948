"""Fixtures of the notifier tests: a scripted receiver on 127.0.0.1 and the notifier's session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runlog.notifier.http import Session, open_session

from .receiver import Receiver, receiver


@pytest.fixture
async def rcv() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with open_session() as s:
        yield s
