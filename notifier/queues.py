"""One channel's queue: its deliveries in order, sent by a few workers at its own pace.

Every channel has its own queue, workers and pacer, so a receiver that stalls or throttles
holds up only its own deliveries. A queue lives in memory only: what it holds is still
pending in the delivery log, so a queue dropped on a stop or a crash loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

from runlog.commands.runner import finish_or_cancel
from runlog.projections.deliveries import DeliveryView

from .limits import ChannelLimits, Pacer

Deliver = Callable[[DeliveryView], Awaitable[None]]


class ChannelQueue:
    def __init__(self, channel_id: UUID, limits: ChannelLimits, deliver: Deliver, pacer: Pacer) -> None:
        self.channel_id = channel_id
        self.limits = limits
        self._deliver = deliver
        self._pacer = pacer
        self._pending: asyncio.Queue[DeliveryView] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._closing = False

    def put(self, view: DeliveryView) -> None:
        if self._closing:
            raise RuntimeError("the channel queue is closed")
        self._pending.put_nowait(view)
        # Workers start as work arrives, up to the channel's concurrency.
        if len(self._workers) < self.limits.concurrency and len(self._busy) + self._pending.qsize() > len(self._workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"runlog-channel-{self.channel_id}"))

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._closing:
            view = await self._pending.get()
            self._busy.add(me)
            try:
                await self._pacer.acquire()
                await self._deliver(view)
            finally:
                self._busy.discard(me)

    async def close(self, timeout: float) -> list[DeliveryView]:
        """Stop: sends under way may finish within ``timeout`` seconds, then are cancelled (their
        deliveries stay waiting in the log). Returns the deliveries that were never started."""
        self._closing = True
        for worker in self._workers:
            if worker not in self._busy:
                worker.cancel()
        await finish_or_cancel(self._workers, timeout)
        left = []
        while not self._pending.empty():
            left.append(self._pending.get_nowait())
        return left


__all__ = ["ChannelQueue", "Deliver"]
