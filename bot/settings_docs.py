"""Write the README's configuration table and app.json's `env` from `bot.config.SETTINGS`.

`python -m bot.settings_docs` rewrites both files in place (`scripts/settings` runs it);
tests/bot/test_settings_registry.py fails when either differs from what this renders.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import app_json_env, readme_table

ROOT = Path(__file__).resolve().parent.parent
TABLE_START = "<!-- settings:start (rendered from bot/config.py by scripts/settings; do not edit) -->\n"
TABLE_END = "<!-- settings:end -->\n"


def render_readme(text: str) -> str:
    """`text` (the README) with the table between the markers replaced by the rendered one."""
    head, start, rest = text.partition(TABLE_START)
    _, end, tail = rest.partition(TABLE_END)
    if not start or not end:
        raise ValueError("README.md lacks the settings table markers")
    return head + TABLE_START + readme_table() + TABLE_END + tail


def render_app_json(text: str) -> str:
    """`text` (app.json) with its `env` replaced by the rendered one; every other key kept."""
    manifest = json.loads(text)
    manifest["env"] = app_json_env()
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, render in (("README.md", render_readme), ("app.json", render_app_json)):
        path = ROOT / name
        old = path.read_text()
        new = render(old)
        if new != old:
            path.write_text(new)
            print(f"rewrote {name}")


if __name__ == "__main__":
    main()
