"""What the post-mortem needs, in Redis: recorded while the incident runs, kept with the audit.

Key layout (all under `pgconn:`):

- `pgconn:holders:{incident id}` — list of JSON holder samples (`{"at": …, "counts": {name: n}}`),
  appended while the incident is open, trimmed to the last MAX_SAMPLES: an incident of days
  costs at most MAX_SAMPLES × a few hundred bytes. `pgconn:holders-first:{incident id}` keeps
  the very first sample, which the trimming would otherwise lose.
- `pgconn:postmortem-start:{incident id}` — what the first report said (likely cause, budget).
- `pgconn:postmortem-claim:{incident id}` — SET NX: one process writes the post-mortem.
- `pgconn:postmortem:{app}:{incident id}` — the post-mortem (JSON: the summary, its Markdown,
  the uploaded files), and `pgconn:postmortems:{app}` the ids, newest first, at most KEEP.
  Like the audit stream these are bounded by count, not time: the latest stays retrievable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from bot.postmortem.chart import HolderSample
from bot.postmortem.summary import BudgetFigure, Start
from bot.state import Redis, required, unavailable
from bot.state.incidents import INCIDENT_TTL_S
from bot.state.locks import claim_once

MAX_SAMPLES = 360
KEEP = 20
CLAIM_TTL_S = 3600


class PostmortemStore:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    def _r(self) -> Redis:
        return required(self._redis)

    async def add_holders(self, incident_id: str, sample: HolderSample) -> None:
        raw = json.dumps({"at": round(sample.at, 3), "counts": dict(sample.counts)}, separators=(",", ":"))
        key = f"pgconn:holders:{incident_id}"
        pipe = self._r().pipeline(transaction=False)
        pipe.set(f"pgconn:holders-first:{incident_id}", raw, nx=True, ex=INCIDENT_TTL_S)
        pipe.rpush(key, raw)
        pipe.ltrim(key, -MAX_SAMPLES, -1)
        pipe.expire(key, INCIDENT_TTL_S)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def holders(self, incident_id: str) -> list[HolderSample]:
        try:
            first = await self._r().get(f"pgconn:holders-first:{incident_id}")
            rest = await self._r().lrange(f"pgconn:holders:{incident_id}", 0, -1)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        seen: set[str] = set()
        out = []
        for raw in [str(r) for r in ([first] if first else []) + list(rest)]:
            if raw in seen:
                continue
            seen.add(raw)
            data = json.loads(raw)
            out.append(HolderSample(float(data["at"]), {str(k): int(v) for k, v in data["counts"].items()}))
        return sorted(out, key=lambda s: s.at)

    async def note_start(self, incident_id: str, start: Start) -> None:
        """What the incident's first report said; the first one written stays."""
        raw = json.dumps(asdict(start))
        try:
            await self._r().set(f"pgconn:postmortem-start:{incident_id}", raw, nx=True, ex=INCIDENT_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def start(self, incident_id: str) -> Start:
        try:
            raw = await self._r().get(f"pgconn:postmortem-start:{incident_id}")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        if not raw:
            return Start()
        data = json.loads(raw)
        budget = data.get("budget")
        return Start(
            cause=str(data.get("cause") or ""),
            cause_check=str(data.get("cause_check") or ""),
            budget=BudgetFigure(**budget) if budget else None,
        )

    async def claim(self, incident_id: str) -> bool:
        """True for exactly one caller per incident: that one writes the post-mortem."""
        try:
            return await claim_once(self._r(), f"pgconn:postmortem-claim:{incident_id}", "1", CLAIM_TTL_S)
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def release(self, incident_id: str) -> None:
        """The post-mortem could not be written: let the next attempt (a retried resolution) try."""
        try:
            await self._r().delete(f"pgconn:postmortem-claim:{incident_id}")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def save(self, app: str, incident_id: str, record: dict[str, Any]) -> None:
        index = f"pgconn:postmortems:{app}"
        pipe = self._r().pipeline(transaction=True)
        pipe.set(f"pgconn:postmortem:{app}:{incident_id}", json.dumps(record))
        pipe.lrem(index, 0, incident_id)
        pipe.lpush(index, incident_id)
        pipe.lrange(index, KEEP, -1)
        pipe.ltrim(index, 0, KEEP - 1)
        try:
            results: Sequence[Any] = await pipe.execute()
            older = results[3]
            if older:
                await self._r().delete(*(f"pgconn:postmortem:{app}:{i}" for i in older))
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None

    async def latest(self, app: str) -> dict[str, Any] | None:
        try:
            ids = await self._r().lrange(f"pgconn:postmortems:{app}", 0, 0)
            if not ids:
                return None
            raw = await self._r().get(f"pgconn:postmortem:{app}:{str(ids[0])}")
        except (RedisError, OSError) as exc:
            raise unavailable(exc) from None
        return json.loads(raw) if raw else None
