"""Block Kit validation, as strict as Slack's own for the parts pgconn uses.

Slack rejects a message whose blocks break a limit with ``invalid_blocks`` and a list of
messages ending in ``[json-pointer:/blocks/...]``. A bot that only ever talks to a lenient
fake finds out in production, in the middle of an incident, that its report has 51 blocks
or a 3001-character section. So the emulator checks the documented limits of the block
types and elements pgconn renders (section, context, actions, header, divider, image,
buttons, confirm dialogs, text objects) exactly, and the remaining Block Kit types loosely
(known type, sane ids) so an unusual but valid message is never refused.

Pure functions only: ``validate_blocks(blocks) -> list of error strings`` (empty when valid).
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS_MESSAGE = 50

BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)

# Interactive elements allowed in an ``actions`` block / as a section ``accessory``.
_SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
ACTIONS_ELEMENT_TYPES = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "overflow",
        "radio_buttons",
        "timepicker",
        "workflow_button",
        "rich_text_input",
    }
    | _SELECTS
)
ACCESSORY_TYPES = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "image",
        "overflow",
        "radio_buttons",
        "timepicker",
        "workflow_button",
    }
    | _SELECTS
)

# Allowed keys, for the block and element types checked strictly. Slack answers an unknown
# key with "invalid additional property", which is how typos like ``acton_id`` surface.
_BLOCK_KEYS: dict[str, frozenset[str]] = {
    "section": frozenset({"type", "block_id", "text", "fields", "accessory", "expand"}),
    "header": frozenset({"type", "block_id", "text"}),
    "divider": frozenset({"type", "block_id"}),
    "context": frozenset({"type", "block_id", "elements"}),
    "actions": frozenset({"type", "block_id", "elements"}),
    "image": frozenset({"type", "block_id", "image_url", "slack_file", "alt_text", "title"}),
    "markdown": frozenset({"type", "block_id", "text"}),
}
_BUTTON_KEYS = frozenset(
    {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}
)
_CONFIRM_KEYS = frozenset({"title", "text", "confirm", "deny", "style"})
_PLAIN_TEXT_KEYS = frozenset({"type", "text", "emoji"})
_MRKDWN_KEYS = frozenset({"type", "text", "verbatim"})
_IMAGE_ELEMENT_KEYS = frozenset({"type", "image_url", "slack_file", "alt_text"})


class _Checker:
    """Collects errors in Slack's wording: ``<problem> [json-pointer:<path>]``."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()

    def error(self, path: str, problem: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{path}]")

    def keys(self, obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.error(f"{path}/{key}", "invalid additional property: " + key)

    def string(self, obj: dict[str, Any], key: str, path: str, *, max_len: int, required: bool) -> str | None:
        if key not in obj:
            if required:
                self.error(path, f"missing required field: {key}")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.error(f"{path}/{key}", "must be a string")
            return None
        if len(value) > max_len:
            self.error(f"{path}/{key}", f"must be less than {max_len + 1} characters")
        return value

    def text_object(
        self,
        obj: object,
        path: str,
        *,
        max_len: int,
        plain_only: bool = False,
    ) -> None:
        if not isinstance(obj, dict):
            self.error(path, "must provide an object")
            return
        kind = obj.get("type")
        if kind == "plain_text":
            self.keys(obj, _PLAIN_TEXT_KEYS, path)
            if "emoji" in obj and not isinstance(obj["emoji"], bool):
                self.error(f"{path}/emoji", "must be a boolean")
        elif kind == "mrkdwn" and not plain_only:
            self.keys(obj, _MRKDWN_KEYS, path)
        elif kind == "mrkdwn":
            self.error(f"{path}/type", "must be plain_text")
            return
        else:
            expected = "plain_text" if plain_only else "plain_text or mrkdwn"
            self.error(f"{path}/type", f"must be {expected}")
            return
        text = self.string(obj, "text", path, max_len=max_len, required=True)
        if text is not None and text == "":
            self.error(f"{path}/text", "must be more than 0 characters")

    def block_id(self, block: dict[str, Any], path: str) -> None:
        value = self.string(block, "block_id", path, max_len=255, required=False)
        if value is None:
            return
        if value in self.block_ids:
            self.error(f"{path}/block_id", f"duplicate block_id: {value}")
        self.block_ids.add(value)

    def confirm(self, obj: object, path: str) -> None:
        if not isinstance(obj, dict):
            self.error(path, "must provide an object")
            return
        self.keys(obj, _CONFIRM_KEYS, path)
        for key, limit, plain in (
            ("title", 100, True),
            ("text", 300, False),
            ("confirm", 30, True),
            ("deny", 30, True),
        ):
            if key not in obj:
                self.error(path, f"missing required field: {key}")
            else:
                self.text_object(obj[key], f"{path}/{key}", max_len=limit, plain_only=plain)
        if "style" in obj and obj["style"] not in ("primary", "danger"):
            self.error(f"{path}/style", "must be one of primary, danger")

    def action_id(self, element: dict[str, Any], path: str, seen: set[str]) -> None:
        value = self.string(element, "action_id", path, max_len=255, required=False)
        if value is None:
            return
        if value in seen:
            self.error(f"{path}/action_id", f"duplicate action_id: {value}")
        seen.add(value)

    def button(self, element: dict[str, Any], path: str, seen: set[str]) -> None:
        self.keys(element, _BUTTON_KEYS, path)
        if "text" not in element:
            self.error(path, "missing required field: text")
        else:
            self.text_object(element["text"], f"{path}/text", max_len=75, plain_only=True)
        self.action_id(element, path, seen)
        self.string(element, "value", path, max_len=2000, required=False)
        self.string(element, "url", path, max_len=3000, required=False)
        self.string(element, "accessibility_label", path, max_len=75, required=False)
        if "style" in element and element["style"] not in ("primary", "danger"):
            self.error(f"{path}/style", "must be one of primary, danger")
        if "confirm" in element:
            self.confirm(element["confirm"], f"{path}/confirm")

    def image_element(self, element: dict[str, Any], path: str) -> None:
        self.keys(element, _IMAGE_ELEMENT_KEYS, path)
        self.image_source(element, path)

    def image_source(self, obj: dict[str, Any], path: str) -> None:
        self.string(obj, "alt_text", path, max_len=2000, required=True)
        if "image_url" not in obj and "slack_file" not in obj:
            self.error(path, "missing required field: image_url")
        self.string(obj, "image_url", path, max_len=3000, required=False)

    def interactive(self, element: object, path: str, allowed: frozenset[str], seen: set[str]) -> None:
        if not isinstance(element, dict):
            self.error(path, "must provide an object")
            return
        kind = element.get("type")
        if kind not in allowed:
            self.error(f"{path}/type", f"unsupported type: {kind}")
            return
        if kind == "button":
            self.button(element, path, seen)
        elif kind == "image":
            self.image_element(element, path)
        else:
            # Less common elements: checked for what every element shares.
            self.action_id(element, path, seen)
            if "confirm" in element:
                self.confirm(element["confirm"], f"{path}/confirm")

    def section(self, block: dict[str, Any], path: str) -> None:
        if "text" not in block and "fields" not in block:
            self.error(path, "must provide either text or fields")
        if "text" in block:
            self.text_object(block["text"], f"{path}/text", max_len=3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list):
                self.error(f"{path}/fields", "must provide an array")
            else:
                if len(fields) > 10:
                    self.error(f"{path}/fields", "must provide no more than 10 items")
                if not fields:
                    self.error(f"{path}/fields", "must provide at least 1 items")
                for i, field in enumerate(fields):
                    self.text_object(field, f"{path}/fields/{i}", max_len=2000)
        if "accessory" in block:
            self.interactive(block["accessory"], f"{path}/accessory", ACCESSORY_TYPES, set())

    def elements(self, block: dict[str, Any], path: str, *, max_items: int) -> list[tuple[int, Any]]:
        elements = block.get("elements")
        if elements is None:
            self.error(path, "missing required field: elements")
            return []
        if not isinstance(elements, list):
            self.error(f"{path}/elements", "must provide an array")
            return []
        if not elements:
            self.error(f"{path}/elements", "must provide at least 1 items")
        if len(elements) > max_items:
            self.error(f"{path}/elements", f"must provide no more than {max_items} items")
        return list(enumerate(elements))

    def block(self, block: object, path: str) -> None:
        if not isinstance(block, dict):
            self.error(path, "must provide an object")
            return
        kind = block.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
            return
        if kind not in BLOCK_TYPES:
            self.error(f"{path}/type", f"unsupported type: {kind}")
            return
        if kind in _BLOCK_KEYS:
            self.keys(block, _BLOCK_KEYS[kind], path)
        self.block_id(block, path)
        if kind == "section":
            self.section(block, path)
        elif kind == "header":
            if "text" not in block:
                self.error(path, "missing required field: text")
            else:
                self.text_object(block["text"], f"{path}/text", max_len=150, plain_only=True)
        elif kind == "context":
            for i, element in self.elements(block, path, max_items=10):
                epath = f"{path}/elements/{i}"
                if isinstance(element, dict) and element.get("type") == "image":
                    self.image_element(element, epath)
                else:
                    self.text_object(element, epath, max_len=3000)
        elif kind == "actions":
            seen: set[str] = set()
            for i, element in self.elements(block, path, max_items=25):
                self.interactive(element, f"{path}/elements/{i}", ACTIONS_ELEMENT_TYPES, seen)
        elif kind == "image":
            self.image_source(block, path)
            if "title" in block:
                self.text_object(block["title"], f"{path}/title", max_len=2000, plain_only=True)
        elif kind == "markdown":
            self.string(block, "text", path, max_len=12000, required=True)


def validate_blocks(blocks: object, *, max_blocks: int = MAX_BLOCKS_MESSAGE) -> list[str]:
    """Slack's ``invalid_blocks`` messages for ``blocks``; empty when Slack would accept them."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.error("/blocks", "must provide an array")
        return checker.errors
    if len(blocks) > max_blocks:
        checker.error("/blocks", f"no more than {max_blocks} items allowed")
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}")
    return checker.errors


def find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[str | None, dict[str, Any]] | None:
    """The (block_id, element) of the interactive element with ``action_id``, if any."""
    for block in blocks:
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            candidates = [block["accessory"]]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None
