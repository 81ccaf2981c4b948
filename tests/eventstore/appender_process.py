"""A separate process that appends events, for the multi-process tests.

    python -m tests.eventstore.appender_process URL NAME TASKS APPENDS_PER_TASK

Prints one line, ``ok <count>``, or the error it met (exit status 1).
"""

from __future__ import annotations

import asyncio
import sys
from uuid import uuid4

from runlog.eventstore import NewEvent, open_store


async def main(url: str, name: str, tasks: int, appends: int) -> int:
    async with open_store(url) as store:

        async def task(n: int) -> int:
            for i in range(appends):
                # Mix single events and small batches so transactions differ in size.
                size = 1 + (i % 3)
                events = [NewEvent(type="test.appended", data=f"{name}".encode(), id=uuid4()) for _ in range(size)]
                await store.append(f"{name}-{n}", events)
            return sum(1 + (i % 3) for i in range(appends))

        counts = await asyncio.gather(*(task(n) for n in range(tasks)))
    return sum(counts)


if __name__ == "__main__":
    url, name, tasks, appends = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    try:
        total = asyncio.run(main(url, name, tasks, appends))
    except Exception as exc:  # report, do not hide: the test prints this line
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
    print(f"ok {total}", flush=True)
