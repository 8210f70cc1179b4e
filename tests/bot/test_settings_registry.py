"""One list of settings (bot.config.SETTINGS) is the source for parsing, defaults, the README's
configuration table and app.json: these fail when any of them disagrees with it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from bot.config import SETTINGS, Settings
from bot.errors import ConfigError
from bot.settings_docs import render_app_json, render_readme

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "HEROKU_API_KEY": "k",
    "PGCONN_APPS": "a-app",
}
# Fields from_env fills from several variables at once.
COMBINED = {"slack_signing_secret", "admin_users", "admin_groups", "diagnosis_thresholds", "app_routes"}


def test_every_settings_field_comes_from_exactly_one_registered_variable() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    registered = [s.field for s in SETTINGS if s.field is not None]
    assert len(registered) == len(set(registered)), "two variables fill one field"
    assert set(registered) <= fields, set(registered) - fields
    assert fields - set(registered) == COMBINED
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)


def test_the_dataclass_defaults_are_the_registry_defaults() -> None:
    """Settings(...) built directly (tests, the sandbox) and Settings.from_env agree."""
    by_name = {f.name: f for f in dataclasses.fields(Settings)}
    parsed = Settings.from_env(MINIMAL)
    for s in SETTINGS:
        if s.field is None or s.default is None:
            continue
        assert by_name[s.field].default == s.parse(s.env, s.default) == getattr(parsed, s.field), s.env


def test_the_readme_table_is_the_rendered_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    assert render_readme(readme) == readme, "README's configuration table is stale: run scripts/settings"


def test_app_json_env_is_the_rendered_registry() -> None:
    text = (ROOT / "app.json").read_text()
    assert render_app_json(text) == text, "app.json's env is stale: run scripts/settings"


def test_app_json_lists_every_variable_with_a_description_and_marks_what_start_up_needs() -> None:
    env = json.loads((ROOT / "app.json").read_text())["env"]
    platform_set = {"PORT", "HOST", "REDIS_URL"}
    assert set(env) == {s.env for s in SETTINGS} - platform_set
    assert all(len(entry["description"]) > 10 for entry in env.values())
    assert {name for name, entry in env.items() if entry["required"]} == {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "HEROKU_API_KEY",
        "PGCONN_APPS",
    }
    assert env["PGCONN_DRAIN_TOKEN"]["generator"] == "secret"
    # What app.json marks required is exactly what start-up refuses to run without (HTTP mode).
    for name in (n for n, entry in env.items() if entry["required"]):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({**MINIMAL, name: ""})
        assert info.value.message.startswith(name)
    Settings.from_env(MINIMAL)


def test_app_json_has_no_placeholder_and_lands_on_the_setup_page() -> None:
    manifest = json.loads((ROOT / "app.json").read_text())
    assert "example" not in json.dumps(manifest)
    assert "repository" not in manifest or "pgconn/pgconn" not in manifest["repository"]
    assert manifest["success_url"] == "/setup"
    assert manifest["addons"] == [{"plan": "heroku-redis:mini", "as": "REDIS"}]


def test_nothing_reads_the_environment_around_the_registry() -> None:
    """Every variable pgconn reads goes through SETTINGS: no os.environ / getenv in bot/ or
    handlers/ outside the entry point that hands the environment to Settings.from_env."""
    allowed = {ROOT / "bot" / "__main__.py"}
    readers = re.compile(r"os\.environ|getenv\(")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("bot", "handlers")
        for path in (ROOT / folder).rglob("*.py")
        if path not in allowed and readers.search(path.read_text())
    ]
    assert offenders == []
