"""The vendored contracts are byte-for-byte the shared originals.

The shared originals (`../shared/contracts/`) are not on every machine that runs the suite, so
the digest of each original is pinned here: the vendored copy is always checked against it, and
where the originals are present, the pin is checked against them (a re-copied contract needs a
new pin, taken from the original, not from the copy).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "contracts"
SHARED = [Path(__file__).resolve().parents[3] / "shared" / "contracts", Path("/work/shared/contracts")]
# sha256 of ../shared/contracts/<name> (2026-06 copies).
PINNED = {
    "heroku-platform-api.schema.json": "f8954a58ad229bf95dcdbb62df1ff5a1414e6a04bdf81422e33e43faca802202",
    "slack-web-api.openapi.json": "742a5c977180a829df8767cf57bc417d99b3713583aee83741efb9c08ca731e7",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", list(PINNED))
def test_vendored_contract_matches_the_shared_original(name: str) -> None:
    vendored = HERE / name
    assert vendored.stat().st_size > 100_000
    assert digest(vendored) == PINNED[name], f"{name} is not the pinned original: re-copy it"
    for original in (d / name for d in SHARED if (d / name).exists()):
        assert digest(original) == PINNED[name], f"{original} changed: re-copy it and pin its digest"
