"""`python -m bot …` with every Redis round trip written down, for bench/redis_trips.py only.

    REDIS_TRIPS_LOG=/tmp/trips.jsonl python bench/counted_bot.py serve|worker

redis-py sends each round trip as one `send_packed_command` call (a pipeline or a script is one call,
whatever it holds), so wrapping that method counts round trips exactly, without MONITOR. Each call
becomes one JSON line: the process, when (time.monotonic(), one clock for every process on the
machine) and each command's name and first key.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from typing import Any

from redis.asyncio.connection import AbstractConnection

_log = open(os.environ["REDIS_TRIPS_LOG"], "a", buffering=1)  # noqa: SIM115 - open for the process's life
_send = AbstractConnection.send_packed_command


def commands(packed: Any) -> list[list[str]]:
    """[name, first key] of each command in one RESP write."""
    data = packed if isinstance(packed, bytes | bytearray) else b"".join(bytes(chunk) for chunk in packed)
    found: list[list[str]] = []
    at = 0
    while at < len(data) and data[at : at + 1] == b"*":
        end = data.index(b"\r\n", at)
        count = int(data[at + 1 : end])
        at = end + 2
        words: list[str] = []
        for _ in range(count):
            end = data.index(b"\r\n", at)
            size = int(data[at + 1 : end])
            words.append(data[end + 2 : end + 2 + size].decode(errors="replace"))
            at = end + 2 + size + 2
        name = words[0].upper() if words else "?"
        # EVALSHA sha numkeys key…: the first key is the fourth word.
        key_at = 3 if name in ("EVALSHA", "EVAL") else 1
        found.append([name, words[key_at] if len(words) > key_at else ""])
    return found


async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    _log.write(json.dumps({"pid": os.getpid(), "at": time.monotonic(), "cmds": commands(command)}) + "\n")
    await _send(self, command, check_health)


AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["bot", *sys.argv[1:]]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
