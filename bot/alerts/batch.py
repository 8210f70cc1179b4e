"""What the alert engine keeps per app between looks: the signals that arrived since a
worker last looked (coalesced and bounded), and what it last read of the app from Heroku.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.detect import Signal
from bot.readings import AppContext, Database, ProcessType
from bot.state.metrics import Sample

# Heroku's primary database attachment: what DATABASE_URL points at, and what app
# output means when it says "too many connections" without naming a database.
PRIMARY_ATTACHMENT = "DATABASE"


@dataclass
class Pending:
    """Signals of one app that arrived since a worker last looked. Bounded in size."""

    fatal: dict[str | None, int] = field(default_factory=dict)  # attachment (None: primary) → lines
    excerpt: str = ""
    role: str | None = None
    source: str = ""  # proc of the latest refusal line: "web.3" (app output), "postgres.1234" …
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # add-on → samples
    attempts: int = 0

    MAX_SAMPLES = 2000  # per add-on; a burst beyond this keeps its newest part
    MAX_ATTEMPTS = 5
    # Distinct databases named by one batch. The names come from the lines themselves (a
    # Postgres line's `[ATTACHMENT]`, a metric's `addon=`): 12,000 forged names fit in one frame,
    # and each would have been an incident of its own. An app has a handful of databases.
    MAX_DATABASES = 8

    @property
    def size(self) -> int:
        return sum(self.fatal.values()) + sum(len(v) for v in self.samples.values())

    def add(self, signals: Sequence[Signal], now: float) -> None:
        for i, sig in enumerate(signals):
            if sig.kind == "metrics":
                if sig.active is None:
                    continue
                key = sig.database or PRIMARY_ATTACHMENT
                if key not in self.samples and len(self.samples) >= self.MAX_DATABASES:
                    continue
                # Distinct scores keep every sample of one request in order.
                self.samples.setdefault(key, []).append(Sample(now + i * 1e-6, sig.active, sig.waiting))
            else:
                if sig.database not in self.fatal and len(self.fatal) >= self.MAX_DATABASES:
                    continue
                self.fatal[sig.database] = self.fatal.get(sig.database, 0) + 1
                self.excerpt = sig.excerpt
                self.source = sig.app_proc
                self.role = sig.role or self.role
        for samples in self.samples.values():
            if len(samples) > self.MAX_SAMPLES:
                del samples[: len(samples) - self.MAX_SAMPLES]

    def merge_newer(self, newer: Pending) -> None:
        for k, v in newer.fatal.items():
            self.fatal[k] = self.fatal.get(k, 0) + v
        self.excerpt = newer.excerpt or self.excerpt
        self.source = newer.source or self.source
        self.role = newer.role or self.role
        for k, samples in newer.samples.items():
            mine = self.samples.setdefault(k, [])
            mine.extend(samples)
            if len(mine) > self.MAX_SAMPLES:
                del mine[: len(mine) - self.MAX_SAMPLES]


@dataclass
class KnownApp:
    """An app's databases, limits, config vars and formation, as last read from Heroku."""

    databases: list[Database]
    limits: dict[str, int | None]
    config_vars: dict[str, str] | None
    fetched_at: float
    formation: tuple[ProcessType, ...] = ()

    def context(self, app: str) -> AppContext | None:
        """What build_report would fetch first, so a new alert costs one Heroku round trip less."""
        if not self.databases or self.config_vars is None:
            return None
        return AppContext(
            app=app, database=self.databases[0], config_vars=self.config_vars, formation=self.formation
        )
