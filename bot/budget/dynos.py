"""Heroku dyno sizes: the spelling of a size, and how many CPUs each has. Pure.

What each language's buildpack sets per size (WEB_CONCURRENCY) lives with that language's
readers (python.py, node.py).
"""

from __future__ import annotations

import re

_SIZE_ALIASES = {"1x": "standard-1x", "2x": "standard-2x", "px": "performance-l"}
_SMALL = ("eco", "basic", "free", "hobby", "standard-1x")


# What `nproc` reports: Common Runtime standard dynos run on 8-core hosts (celery's
# default concurrency there is 8); Performance-M has 2 cores, Performance-L 8
# (heroku-buildpack-python WEB_CONCURRENCY.sh comments).
_CPUS: dict[str, int] = {
    **dict.fromkeys((*_SMALL, "standard-2x"), 8),
    **dict.fromkeys(("performance-m", "private-m", "shield-m"), 2),
    **dict.fromkeys(("performance-l", "private-l", "shield-l"), 8),
}
_ASSUMED_CPUS = 8


def _size_key(size: object) -> str:
    s = re.sub(r"[\s_]+", "-", str(size or "").strip().lower())
    return _SIZE_ALIASES.get(s, s)
