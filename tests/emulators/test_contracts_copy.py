"""The vendored contracts are byte-for-byte the shared originals (when those are on this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "contracts"
SHARED = [Path(__file__).resolve().parents[3] / "shared" / "contracts", Path("/work/shared/contracts")]
NAMES = ["heroku-platform-api.schema.json", "slack-web-api.openapi.json"]


@pytest.mark.parametrize("name", NAMES)
def test_vendored_contract_matches_the_shared_original(name: str) -> None:
    vendored = (HERE / name).read_bytes()
    assert len(vendored) > 100_000
    originals = [d / name for d in SHARED if (d / name).exists()]
    for original in originals:
        assert original.read_bytes() == vendored, f"{name} differs from {original}: re-copy it"
