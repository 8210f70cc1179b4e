"""The Heroku emulator against the Platform API schema, and its effects on a real Postgres.

Every resource is fetched over HTTP and validated against the `targetSchema` of the
schema link that serves it (method + href), with the schema's `strictProperties`
enforced: all listed properties present, nothing else. Effects are checked on the
real server: restarts and resets terminate the role's backends, pg:info counts them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4
from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.heroku import EmulatedApp, HerokuEmulator
from emulators.serve import RunningServer, free_port, serve_in_thread
from sandbox.load import ConnectionLoad
from sandbox.servers import LocalPostgres
from tests.support import API_KEY, APP_ROLE, ROLE_LIMIT, role_backends, terminate_role

# A vendored copy of ../shared/contracts (CI clones the repo alone); test_contracts_copy.py
# checks it still matches the shared original whenever that is present.
SCHEMA_PATH = Path(__file__).resolve().parent / "contracts" / "heroku-platform-api.schema.json"
APP = "shop-api"
FORMATION = [
    {"type": "web", "quantity": 3, "command": "gunicorn app:app -w 3", "size": "basic"},
    {"type": "worker", "quantity": 1, "command": "celery -A app worker -c 4", "size": "basic"},
]


# -- schema machinery ------------------------------------------------------------------


def _strict(node: Any) -> Any:
    """Apply the hyper-schema's `strictProperties`: every listed property, nothing else."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.get("strictProperties") is True and isinstance(out.get("properties"), dict):
        out["required"] = sorted(set(out.get("required", [])) | set(out["properties"]))
        out["additionalProperties"] = False
    return out


def _load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.exists():
        pytest.fail(f"Heroku Platform API schema not found at {SCHEMA_PATH}")
    schema: dict[str, Any] = _strict(json.loads(SCHEMA_PATH.read_text()))
    return schema


SCHEMA = _load_schema()

FORMATS = FormatChecker(formats=())


@FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return str(uuid.UUID(value)) == value


@FORMATS.checks("date-time")
def _is_heroku_time(value: object) -> bool:
    # Heroku's own form: second precision, UTC, "Z".
    return not isinstance(value, str) or bool(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value)
    )


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value))


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def _href_pattern(href: str) -> re.Pattern[str]:
    pieces = re.split(r"\{\([^)]*\)\}", href)
    return re.compile("[^/]+".join(re.escape(p) for p in pieces))


LINKS = [
    (link["method"], _href_pattern(link["href"]), link.get("targetSchema"), link["href"])
    for definition in SCHEMA["definitions"].values()
    for link in definition.get("links", [])
]


def target_schema(method: str, path: str) -> dict[str, Any]:
    """The targetSchema of the link serving `method path` (the most literal href wins)."""
    found = [(len(href), target) for m, pattern, target, href in LINKS
             if m == method and pattern.fullmatch(path)]
    assert found, f"no schema link serves {method} {path}"
    target = max(found, key=lambda f: f[0])[1]
    assert target is not None, f"schema link for {method} {path} has no targetSchema"
    return target


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    # The target becomes the root of a document that also holds every definition, so its
    # "#/definitions/..." references resolve within the schema file.
    root = {**schema, "definitions": SCHEMA["definitions"]}
    registry: Registry[Any] = Registry().with_resource("urn:heroku-schema",
                                                       DRAFT4.create_resource(root))
    validator = Draft4Validator(root, registry=registry, format_checker=FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)]


def assert_matches_schema(method: str, path: str, body: Any) -> None:
    errors = schema_errors(body, target_schema(method, path))
    assert not errors, f"{method} {path} does not match the schema:\n" + "\n".join(errors[:20])


# -- fixtures ------------------------------------------------------------------------------


def postgres_url(app_dsn: str) -> str:
    # Heroku hands out postgres:// URLs; the CLI looks for that prefix.
    return app_dsn.replace("postgresql://", "postgres://", 1)


@pytest.fixture
def emulator(pg: LocalPostgres, app_dsn: str) -> Iterator[HerokuEmulator]:
    terminate_role(pg)
    em = HerokuEmulator(admin_dsn=pg.dsn(), api_key=API_KEY, dyno_boot_seconds=0.3)
    em.add_app(APP, database_url=postgres_url(app_dsn), role=APP_ROLE, formation=FORMATION,
               config_vars={"WEB_CONCURRENCY": "3"},
               buildpacks=["heroku/python"])
    yield em
    terminate_role(pg)


class SwappableApp:
    """One server per module, each test's fresh emulator swapped in: a uvicorn start and
    stop per test would cost ~0.2 s each."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None, "no emulator swapped in"
        await self.target(scope, receive, send)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[RunningServer, SwappableApp]]:
    swap = SwappableApp()
    running = serve_in_thread(swap)
    yield running, swap
    running.stop()


@pytest.fixture
def server(emulator: HerokuEmulator,
           shared_server: tuple[RunningServer, SwappableApp]) -> Iterator[RunningServer]:
    running, swap = shared_server
    swap.target = emulator.app
    yield running
    swap.target = None


# What the CLI sends to have plans and config vars embedded (heroku/cli src/lib/addons/resolve.ts).
VERSION_3 = "application/vnd.heroku+json; version=3"
INCLUSION = {"Accept-Inclusion": "addon:plan,config_vars"}
INCLUDING = {"Accept": "application/vnd.heroku+json; version=3.sdk", **INCLUSION}


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": VERSION_3}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def app(emulator: HerokuEmulator) -> EmulatedApp:
    return emulator.apps[APP]


def call(api: httpx.Client, method: str, path: str, body: Any = None,
         expect: int = 200, **kw: Any) -> Any:
    response = api.request(method, path, json=body, **kw)
    assert response.status_code == expect, (method, path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


# -- every resource against the schema ---------------------------------------------------------

# (method, path template, request body, expected status). Placeholders come from the app.
RESOURCES: list[tuple[str, str, Any, int]] = [
    ("GET", "/account", None, 200),
    ("GET", "/apps", None, 200),
    ("GET", "/apps/{app}", None, 200),
    ("GET", "/apps/{app_id}", None, 200),
    ("GET", "/apps/{app}/addons", None, 200),
    ("GET", "/apps/{app}/addons/{addon_name}", None, 200),
    ("GET", "/addons", None, 200),
    ("GET", "/addons/{addon_id}", None, 200),
    ("GET", "/addons/{addon_name}", None, 200),
    ("GET", "/addons/{addon_id}/addon-attachments", None, 200),
    ("GET", "/apps/{app}/addon-attachments", None, 200),
    ("GET", "/apps/{app}/addon-attachments/DATABASE", None, 200),
    ("GET", "/addon-attachments/{attachment_id}", None, 200),
    ("POST", "/actions/addon-attachments/resolve", {"app": APP, "addon_attachment": "DATABASE"}, 200),
    ("POST", "/actions/addons/resolve", {"app": APP, "addon": "DATABASE"}, 200),
    ("GET", "/apps/{app}/config-vars", None, 200),
    ("PATCH", "/apps/{app}/config-vars", {"FOO": "bar", "WEB_CONCURRENCY": None}, 200),
    ("GET", "/apps/{app}/formation", None, 200),
    ("GET", "/apps/{app}/formation/web", None, 200),
    ("PATCH", "/apps/{app}/formation/web", {"quantity": 2}, 200),
    ("PATCH", "/apps/{app}/formation", {"updates": [{"type": "worker", "quantity": 2}]}, 200),
    ("GET", "/apps/{app}/dynos", None, 200),
    ("GET", "/apps/{app}/dynos/web.1", None, 200),
    ("DELETE", "/apps/{app}/dynos", None, 202),
    ("DELETE", "/apps/{app}/dynos/web.1", None, 202),
    ("DELETE", "/apps/{app}/formations/web", None, 202),
    ("GET", "/apps/{app}/buildpack-installations", None, 200),
    ("PUT", "/apps/{app}/buildpack-installations",
     {"updates": [{"buildpack": "heroku/pgbouncer"}, {"buildpack": "heroku/python"}]}, 200),
    ("GET", "/apps/{app}/log-drains", None, 200),
    ("POST", "/apps/{app}/log-drains", {"url": "https://x:tok@bot.example.com/drains/heroku/shop-api"},
     201),
    ("GET", "/apps/{app}/log-drains/{drain_id}", None, 200),
    ("DELETE", "/apps/{app}/log-drains/{drain_id}", None, 200),
    ("GET", "/apps/{app}/webhooks", None, 200),
    ("POST", "/apps/{app}/webhooks",
     {"url": "https://bot.example.com/webhooks/heroku/shop-api", "include": ["api:formation"],
      "level": "notify", "secret": "s3cret"}, 201),
    ("GET", "/apps/{app}/webhooks/{webhook_id}", None, 200),
    ("DELETE", "/apps/{app}/webhooks/{webhook_id}", None, 200),
    ("GET", "/apps/{app}/releases", None, 200),
    ("POST", "/apps/{app}/builds", {"source_blob": {"url": "https://example.com/src.tgz", "version": "v2"}},
     201),
    ("GET", "/apps/{app}/builds", None, 200),
    ("GET", "/apps/{app}/builds/{build_id}", None, 200),
    ("GET", "/apps/{app}/slugs/{slug_id}", None, 200),
]


@pytest.mark.parametrize(("method", "template", "body", "status"), RESOURCES,
                         ids=[f"{m} {t}" for m, t, _, _ in RESOURCES])
def test_resource_matches_schema(api: httpx.Client, app: EmulatedApp, method: str, template: str,
                                 body: Any, status: int) -> None:
    # Drains and webhooks addressed by id need one to exist first.
    drain = call(api, "POST", f"/apps/{APP}/log-drains",
                 {"url": "syslog+tls://logs.example.com:6514"}, expect=201)
    hook = call(api, "POST", f"/apps/{APP}/webhooks",
                {"url": "https://hooks.example.com/h", "include": ["api:release"],
                 "level": "sync"}, expect=201)
    build = call(api, "POST", f"/apps/{APP}/builds", {"source_blob": {"url": "https://example.com/a.tgz"}},
                 expect=201)
    path = template.format(app=APP, app_id=app.id, addon_id=app.addon.id,
                           addon_name=app.addon.name, attachment_id=app.attachments[0].id,
                           drain_id=drain["id"], webhook_id=hook["id"], build_id=build["id"],
                           slug_id=build["slug"]["id"])
    result = call(api, method, path, body, expect=status)
    assert_matches_schema(method, path, result)


def test_the_schema_check_is_strict(api: httpx.Client) -> None:
    # A check that passes everything proves nothing: missing and extra properties fail.
    app = call(api, "GET", f"/apps/{APP}")
    assert not schema_errors(app, target_schema("GET", f"/apps/{APP}"))
    del app["acm"]
    app["surprise"] = 1
    app["created_at"] = "yesterday"
    errors = " ".join(schema_errors(app, target_schema("GET", f"/apps/{APP}")))
    assert "'acm' is a required property" in errors and "surprise" in errors
    assert "'yesterday' is not a 'date-time'" in errors


def test_list_responses_are_not_empty(api: httpx.Client) -> None:
    # Schema validation of an empty list proves nothing: the lists the bot reads have items.
    for path in ("/apps", "/apps/shop-api/addons", "/apps/shop-api/addon-attachments",
                 "/apps/shop-api/formation", "/apps/shop-api/dynos",
                 "/apps/shop-api/buildpack-installations", "/apps/shop-api/releases"):
        assert call(api, "GET", path), path


def test_config_vars_include_database_url(api: httpx.Client, app_dsn: str) -> None:
    config = call(api, "GET", f"/apps/{APP}/config-vars")
    assert config == {"DATABASE_URL": postgres_url(app_dsn), "WEB_CONCURRENCY": "3"}


def test_attachments_with_inclusion_carry_plan_and_config_vars(api: httpx.Client,
                                                               app: EmulatedApp) -> None:
    rows = call(api, "GET", f"/apps/{APP}/addon-attachments", headers=INCLUDING)
    assert [r["name"] for r in rows] == ["DATABASE"]
    row = rows[0]
    assert row["config_vars"] == ["DATABASE_URL"]
    assert row["addon"]["plan"]["name"] == "heroku-postgresql:essential-0"
    assert row["addon"]["config_vars"] == ["DATABASE_URL"]
    assert row["addon"]["id"] == app.addon.id
    # Apart from the included fields, the shape is the schema's.
    del row["config_vars"], row["addon"]["plan"], row["addon"]["config_vars"]
    assert_matches_schema("GET", f"/apps/{APP}/addon-attachments", rows)
    # Without the header, or with it on plain version 3, nothing extra (the schema forbids it
    # on the embedded add-on).
    for plain in (
        call(api, "GET", f"/apps/{APP}/addon-attachments"),
        call(api, "GET", f"/apps/{APP}/addon-attachments", headers=INCLUSION),
    ):
        assert "config_vars" not in plain[0] and "plan" not in plain[0]["addon"]


MISSING_VERSION = {
    "id": "missing_version",
    "error": "Please specify a version along with Heroku's API MIME type. For example, "
    "`Accept: application/vnd.heroku+json; version=3`.\n",
}


@pytest.mark.parametrize(
    "accept",
    [None, "application/json", "*/*", "application/vnd.heroku+json", "application/vnd.heroku+json; version=2",
     "application/vnd.heroku+json; version="],
)
def test_a_request_without_version_3_in_accept_is_400_missing_version(
    server: RunningServer, emulator: HerokuEmulator, accept: str | None
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"} | ({"Accept": accept} if accept else {})
    emulator.inject(path="/formation", status=503, times=5)  # checked before anything can fail
    response = httpx.get(f"{server.url}/apps/{APP}/formation", headers=headers, timeout=10)
    assert (response.status_code, response.json()) == (400, MISSING_VERSION)
    assert httpx.patch(f"{server.url}/apps/{APP}/formation/web", json={"quantity": 9}, headers=headers,
                       timeout=10).status_code == 400
    assert emulator.apps[APP].formation["web"].quantity != 9


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key"])
def test_authentication_is_checked_before_an_injected_fault(
    server: RunningServer, emulator: HerokuEmulator, authorization: str | None
) -> None:
    emulator.inject(path="/formation", status=503, times=5)
    headers = {"Accept": VERSION_3}
    if authorization:
        headers["Authorization"] = authorization
    response = httpx.get(f"{server.url}/apps/{APP}/formation", headers=headers, timeout=10)
    assert (response.status_code, response.json()["id"]) == (401, "unauthorized")


@pytest.mark.parametrize("ident", ["DATABASE", "DATABASE_URL"])
def test_resolver_finds_the_database(api: httpx.Client, app: EmulatedApp, ident: str) -> None:
    rows = call(api, "POST", "/actions/addon-attachments/resolve",
                {"app": APP, "addon_attachment": ident},
                headers={"Accept-Inclusion": "addon:plan,config_vars"})
    assert len(rows) == 1 and rows[0]["addon"]["id"] == app.addon.id
    missing = call(api, "POST", "/actions/addon-attachments/resolve",
                   {"app": APP, "addon_attachment": "REPLICA"}, expect=404)
    assert missing["id"] == "not_found"


# -- pg:info ---------------------------------------------------------------------------------


def info_of(api: httpx.Client, db: str) -> dict[str, str]:
    body = call(api, "GET", f"/client/v11/databases/{db}")
    return {item["name"]: ", ".join(item["values"]) for item in body["info"]}


def test_pg_info_reports_real_connections(api: httpx.Client, app: EmulatedApp,
                                          load: ConnectionLoad, pg: LocalPostgres) -> None:
    assert info_of(api, app.addon.id)["Connections"] == f"0/{ROLE_LIMIT}"
    load.open(7, "web.1")
    assert info_of(api, app.addon.id)["Connections"] == f"{role_backends(pg)}/{ROLE_LIMIT}"
    assert role_backends(pg) == 7
    load.open(ROLE_LIMIT - 7, "web.2")
    # At the role's limit the app itself gets the real FATAL; the API still answers.
    assert load.open(1, "web.3") == 0
    assert "too many connections for role" in load.failures[-1]
    assert info_of(api, app.addon.name)["Connections"] == f"{ROLE_LIMIT}/{ROLE_LIMIT}"


def test_pg_info_document(api: httpx.Client, app: EmulatedApp, pg: LocalPostgres,
                          app_dsn: str) -> None:
    body = call(api, "GET", f"/client/v11/databases/{app.addon.id}")
    assert body["addon_id"] == app.addon.id and body["name"] == app.addon.name
    assert body["resource_url"] == postgres_url(app_dsn)
    assert body["database_user"] == APP_ROLE and body["plan"] == "essential-0"
    names = [item["name"] for item in body["info"]]
    assert names == ["Plan", "Status", "Connections", "PG Version", "Created", "Data Size",
                     "Tables", "Fork/Follow", "Rollback", "Continuous Protection"]
    info = {item["name"]: item["values"] for item in body["info"]}
    assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in info.values())
    assert info["Plan"] == ["Essential 0"] and info["Status"] == ["Available"]
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None and info["PG Version"] == [str(row[0]).split()[0]]
    assert re.fullmatch(r"\d+(\.\d)? (bytes|kB|MB|GB) / 1 GB \(\d+\.\d\d%\)", info["Data Size"][0])
    assert re.fullmatch(r"\d+/4000 \(In compliance\)", info["Tables"][0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", info["Created"][0])
    assert info["Fork/Follow"] == ["Unsupported"] and info["Rollback"] == ["Unsupported"]


def test_pg_info_on_a_standard_plan(emulator: HerokuEmulator, api: httpx.Client,
                                    app_dsn: str, load: ConnectionLoad) -> None:
    big = emulator.add_app("shop-big", database_url=postgres_url(app_dsn), role=APP_ROLE,
                           plan="standard-0")
    load.open(3, "web.1")
    body = call(api, "GET", f"/client/v11/databases/{big.addon.id}")
    assert body["plan"] == {"id": 1, "name": "standard-0"}
    assert body["num_connections"] == 3
    info = {item["name"]: item["values"] for item in body["info"]}
    assert info["Plan"] == ["Standard 0"] and info["Connections"] == ["3/120"]
    assert info["Connection Pooling"] == ["Available"]


def test_pg_info_unknown_database(api: httpx.Client) -> None:
    body = call(api, "GET", "/client/v11/databases/postgresql-nope-00000", expect=404)
    assert body["id"] == "not_found"


# -- effects ---------------------------------------------------------------------------------


def test_restart_all_terminates_the_dynos_connections(api: httpx.Client, app: EmulatedApp,
                                                      load: ConnectionLoad,
                                                      pg: LocalPostgres) -> None:
    load.open(3, "web.1")
    load.open(2, "web.3")
    load.open(2, "worker.1")
    load.open(2, "")  # dynos that do not set application_name belong to the app too
    bot = ConnectionLoad(load.dsn)
    bot.open(1, "pgconn-reserved")  # the bot's own, outside the app's dynos
    try:
        assert role_backends(pg) == 10
        old_ids = {d.name: d.id for d in app.dynos.values()}
        call(api, "DELETE", f"/apps/{APP}/dynos", expect=202)
        assert load.alive() == 0
        assert bot.alive() == 1 and role_backends(pg) == 1
        assert app.restarts[-1].target == "all" and app.restarts[-1].terminated == 9
        dynos = call(api, "GET", f"/apps/{APP}/dynos")
        assert {d["name"]: d["state"] for d in dynos} == {
            "web.1": "starting", "web.2": "starting", "web.3": "starting", "worker.1": "starting"}
        assert all(old_ids[d["name"]] != d["id"] for d in dynos)  # new dynos, new ids
        time.sleep(0.35)
        assert {d["state"] for d in call(api, "GET", f"/apps/{APP}/dynos")} == {"up"}
    finally:
        bot.close()


@pytest.mark.parametrize("path", ["/apps/shop-api/formations/web", "/apps/shop-api/dynos/web"])
def test_restart_a_process_type(api: httpx.Client, app: EmulatedApp, load: ConnectionLoad,
                                path: str) -> None:
    web = ConnectionLoad(load.dsn)
    try:
        web.open(2, "web.1")
        web.open(1, "web.12 gunicorn")
        load.open(2, "worker.1")
        load.open(1, "webhook-relay")  # not a web dyno despite the prefix
        call(api, "DELETE", path, expect=202)
        assert web.alive() == 0 and load.alive() == 3
        states = {d["name"]: d["state"] for d in call(api, "GET", f"/apps/{APP}/dynos")}
        assert states == {"web.1": "starting", "web.2": "starting", "web.3": "starting",
                          "worker.1": "up"}
        assert app.restarts[-1].target == "web" and app.restarts[-1].terminated == 3
    finally:
        web.close()


def test_restart_one_dyno(api: httpx.Client, app: EmulatedApp, load: ConnectionLoad) -> None:
    one = ConnectionLoad(load.dsn)
    try:
        one.open(2, "web.1")
        one.open(1, "web.1:gunicorn")
        load.open(1, "web.12")
        load.open(1, "web.2")
        call(api, "DELETE", f"/apps/{APP}/dynos/web.1", expect=202)
        assert one.alive() == 0 and load.alive() == 2
        states = {d["name"]: d["state"] for d in call(api, "GET", f"/apps/{APP}/dynos")}
        assert states["web.1"] == "starting" and states["web.2"] == "up"
        missing = call(api, "DELETE", f"/apps/{APP}/dynos/clock.1", expect=404)
        assert missing["id"] == "not_found"
    finally:
        one.close()


def test_connection_reset_terminates_every_backend(api: httpx.Client, app: EmulatedApp,
                                                   load: ConnectionLoad,
                                                   pg: LocalPostgres) -> None:
    load.open(ROLE_LIMIT - 1, "web.1")
    load.open(1, "pgconn-reserved")  # a reset spares nobody, not even the bot
    assert role_backends(pg) == ROLE_LIMIT
    body = call(api, "POST", f"/client/v11/databases/{app.addon.id}/connection_reset")
    assert body == {}
    assert role_backends(pg) == 0 and load.alive() == 0
    assert app.connection_resets == [ROLE_LIMIT]
    assert info_of(api, app.addon.id)["Connections"] == f"0/{ROLE_LIMIT}"


def test_scaling_down_stops_dynos_and_their_connections(api: httpx.Client, app: EmulatedApp,
                                                        load: ConnectionLoad) -> None:
    gone = ConnectionLoad(load.dsn)
    try:
        load.open(1, "web.1")
        gone.open(2, "web.3")
        body = call(api, "PATCH", f"/apps/{APP}/formation/web", {"quantity": 2})
        assert body["quantity"] == 2
        assert gone.alive() == 0 and load.alive() == 1
        assert [d["name"] for d in call(api, "GET", f"/apps/{APP}/dynos")] == [
            "web.1", "web.2", "worker.1"]
        call(api, "PATCH", f"/apps/{APP}/formation", {"updates": [{"type": "web", "quantity": 4}]})
        states = {d["name"]: d["state"] for d in call(api, "GET", f"/apps/{APP}/dynos")}
        assert states == {"web.1": "up", "web.2": "up", "web.3": "starting", "web.4": "starting",
                          "worker.1": "up"}
        assert app.formation["web"].quantity == 4
        missing = call(api, "PATCH", f"/apps/{APP}/formation/clock", {"quantity": 1}, expect=404)
        assert missing["id"] == "not_found"
    finally:
        gone.close()


def test_buildpacks_keep_their_order(emulator: HerokuEmulator, api: httpx.Client,
                                     app: EmulatedApp) -> None:
    released: list[str] = []

    async def on_release(changed: EmulatedApp) -> None:
        released.append(changed.name)

    emulator.on_release = on_release
    order = ["heroku/pgbouncer", "heroku/python",
             "https://github.com/heroku/heroku-buildpack-nodejs"]
    body = call(api, "PUT", f"/apps/{APP}/buildpack-installations",
                {"updates": [{"buildpack": b} for b in order]})
    assert [(r["ordinal"], r["buildpack"]["url"]) for r in body] == list(enumerate(order))
    assert [r["buildpack"]["name"] for r in body][:2] == ["heroku/pgbouncer", "heroku/python"]
    listed = call(api, "GET", f"/apps/{APP}/buildpack-installations")
    assert [r["buildpack"]["url"] for r in listed] == order
    assert app.buildpacks == order and released == [APP]
    bad = call(api, "PUT", f"/apps/{APP}/buildpack-installations", {"updates": [{}]}, expect=422)
    assert bad["id"] == "invalid_params" and app.buildpacks == order


def test_config_var_patch_sets_deletes_and_releases(emulator: HerokuEmulator, api: httpx.Client,
                                                    app: EmulatedApp,
                                                    load: ConnectionLoad) -> None:
    released: list[int] = []
    emulator.on_release = lambda changed: released.append(changed.current_release.version)
    load.open(2, "web.1")
    version = app.current_release.version
    body = call(api, "PATCH", f"/apps/{APP}/config-vars",
                {"PGBOUNCER_DEFAULT_POOL_SIZE": "10", "WEB_CONCURRENCY": None})
    assert "WEB_CONCURRENCY" not in body and body["PGBOUNCER_DEFAULT_POOL_SIZE"] == "10"
    assert call(api, "GET", f"/apps/{APP}/config-vars") == body == app.config_vars
    # A config change is a release, and a release restarts every dyno (their connections go).
    assert app.current_release.version == version + 1 and released == [version + 1]
    assert app.restarts[-1].reason == "release" and load.alive() == 0
    latest = call(api, "GET", f"/apps/{APP}/releases",
                  headers={"Range": "version ..; max=1, order=desc"})
    assert latest[0]["version"] == version + 1
    assert latest[0]["description"] == (
        "Set PGBOUNCER_DEFAULT_POOL_SIZE and Remove WEB_CONCURRENCY config vars")
    bad = call(api, "PATCH", f"/apps/{APP}/config-vars", {"BAD-NAME": "x"}, expect=422)
    assert bad["id"] == "invalid_params"


def test_a_build_releases_a_new_slug_whose_process_types_become_the_formation(
        emulator: HerokuEmulator, api: httpx.Client, app: EmulatedApp, load: ConnectionLoad) -> None:
    before = call(api, "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; max=1, order=desc"})[0]
    call(api, "PATCH", f"/apps/{APP}/config-vars", {"FOO": "bar"})
    config = call(api, "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; max=1, order=desc"})[0]
    # A config change is a release on the same slug: nothing was built.
    assert config["slug"] == before["slug"]
    call(api, "PUT", f"/apps/{APP}/buildpack-installations",
         {"updates": [{"buildpack": "heroku/pgbouncer"}, {"buildpack": "heroku/python"}]})
    url = "https://example.com/source-v2.tgz"
    emulator.sources[url] = {"web": "bin/start-pgbouncer gunicorn app:app"}
    load.open(2, "web.1")
    build = call(api, "POST", f"/apps/{APP}/builds", {"source_blob": {"url": url, "version": "v2"}},
                 expect=201)
    assert [b["name"] for b in build["buildpacks"]] == ["heroku/pgbouncer", "heroku/python"]
    latest = {"Range": "version ..; max=1, order=desc"}
    deployed = call(api, "GET", f"/apps/{APP}/releases", headers=latest)[0]
    assert deployed["version"] == config["version"] + 1 and deployed["slug"] == build["slug"]
    assert deployed["slug"] != before["slug"] and build["release"] == {"id": deployed["id"]}
    slug = call(api, "GET", f"/apps/{APP}/slugs/{build['slug']['id']}")
    assert slug["process_types"] == {"web": "bin/start-pgbouncer gunicorn app:app"}
    formation = {f["type"]: f["command"] for f in call(api, "GET", f"/apps/{APP}/formation")}
    assert formation["web"] == "bin/start-pgbouncer gunicorn app:app"
    # The release restarts every dyno, and is delivered as an api:release webhook.
    assert app.restarts[-1].reason == "release" and load.alive() == 0
    assert call(api, "GET", f"/apps/{APP}/builds")[-1]["id"] == build["id"]
    assert call(api, "POST", f"/apps/{APP}/builds", {"source_blob": {}}, expect=422)["id"] == "invalid_params"


def test_config_change_without_restart(emulator: HerokuEmulator, api: httpx.Client,
                                       load: ConnectionLoad) -> None:
    emulator.restart_on_config_change = False
    load.open(2, "web.1")
    call(api, "PATCH", f"/apps/{APP}/config-vars", {"FOO": "bar"})
    assert load.alive() == 2


def test_log_drains(api: httpx.Client, app: EmulatedApp) -> None:
    url = "https://x:drain-token@bot.example.com/drains/heroku/shop-api"
    drain = call(api, "POST", f"/apps/{APP}/log-drains", {"url": url}, expect=201)
    assert drain["url"] == url and drain["token"].startswith("d.")
    dup = call(api, "POST", f"/apps/{APP}/log-drains", {"url": url}, expect=422)
    assert dup == {"id": "invalid_params", "message": "Url has already been taken"}
    assert [d["id"] for d in call(api, "GET", f"/apps/{APP}/log-drains")] == [drain["id"]]
    # Addressed by URL (percent-encoded, slashes and all) as well as by id.
    removed = call(api, "DELETE", f"/apps/{APP}/log-drains/{quote(url, safe='')}")
    assert removed["id"] == drain["id"] and app.log_drains == []
    call(api, "DELETE", f"/apps/{APP}/log-drains/{drain['id']}", expect=404)
    call(api, "POST", f"/apps/{APP}/log-drains", {"url": "not a url"}, expect=422)


def test_webhooks_keep_their_secret(api: httpx.Client, app: EmulatedApp) -> None:
    hook = call(api, "POST", f"/apps/{APP}/webhooks",
                {"url": "https://bot.example.com/webhooks/heroku/shop-api",
                 "include": ["api:formation", "api:release"], "level": "notify",
                 "secret": "hook-secret"}, expect=201)
    assert "secret" not in hook  # never echoed back, as on Heroku
    assert app.webhooks[0].secret == "hook-secret"
    assert app.webhooks[0].include == ["api:formation", "api:release"]
    call(api, "POST", f"/apps/{APP}/webhooks", {"url": "https://x.example.com", "include": [],
                                                "level": "notify"}, expect=422)


class Receiver:
    """A subscriber's endpoint: records each POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_formation_changes_and_releases_are_delivered_signed_and_recorded(
    emulator: HerokuEmulator, api: httpx.Client, app: EmulatedApp
) -> None:
    receiver = Receiver()
    running = serve_in_thread(receiver)
    try:
        # Subscribed under a public name; the emulator routes it to where the receiver listens.
        emulator.webhooks.routes = {"https://hooks.example.com": running.url}
        call(api, "POST", f"/apps/{APP}/webhooks",
             {"url": "https://hooks.example.com/in", "include": ["api:formation", "api:release"],
              "level": "notify", "secret": "s3cret"}, expect=201)
        call(api, "PATCH", f"/apps/{APP}/formation/web", {"quantity": 5})
        call(api, "PATCH", f"/apps/{APP}/config-vars", {"WEB_CONCURRENCY": "2"})
        call(api, "PATCH", f"/apps/{APP}/formation/web", {"quantity": 5})  # no change: no event
        # Events are published while the change is made: two, the unchanged formation none.
        assert len(emulator.webhooks.of(APP)) == 2
        wait_until(lambda: all(d.status in ("succeeded", "failed") for d in emulator.webhooks.of(APP)))
        assert len(receiver.received) == 2
    finally:
        running.stop()
    events = [json.loads(body) for _, body in receiver.received]
    for headers, body in receiver.received:
        # Heroku's signature: base64 HMAC-SHA256 of the raw body with the secret.
        expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
        assert headers["heroku-webhook-hmac-sha256"] == expected
    formation, release = sorted(events, key=lambda e: e["resource"])
    assert (formation["resource"], formation["action"]) == ("formation", "update")
    assert formation["data"]["type"] == "web" and formation["data"]["quantity"] == 5
    assert formation["previous_data"] == {"quantity": 3}
    assert formation["actor"]["email"] == app.owner.email
    assert (release["resource"], release["action"]) == ("release", "create")
    assert release["data"]["description"] == "Set WEB_CONCURRENCY config vars"
    # The delivery records, as the Platform API serves them.
    listed = call(api, "GET", f"/apps/{APP}/webhook-deliveries")
    assert_matches_schema("GET", f"/apps/{APP}/webhook-deliveries", listed)
    assert {d["status"] for d in listed} == {"succeeded"}
    assert {d["last_attempt"]["code"] for d in listed} == {200}
    ids = {e["webhook_metadata"]["delivery"]["id"] for e in events}
    assert {d["id"] for d in listed} == ids
    one = call(api, "GET", f"/apps/{APP}/webhook-deliveries/{listed[0]['id']}")
    assert_matches_schema("GET", f"/apps/{APP}/webhook-deliveries/{listed[0]['id']}", one)
    call(api, "GET", f"/apps/{APP}/webhook-deliveries/{uuid.uuid4()}", expect=404)


def test_a_sync_delivery_is_retried_and_a_notify_one_is_not(
    emulator: HerokuEmulator, api: httpx.Client, app: EmulatedApp
) -> None:
    receiver = Receiver(status=500)
    running = serve_in_thread(receiver)
    try:
        emulator.webhooks.routes = {"https://hooks.example.com": running.url}
        emulator.webhooks.retry_delay = 0.01
        for path, level in (("/sync", "sync"), ("/notify", "notify")):
            call(api, "POST", f"/apps/{APP}/webhooks",
                 {"url": f"https://hooks.example.com{path}", "include": ["api:formation"],
                  "level": level}, expect=201)
        call(api, "PATCH", f"/apps/{APP}/formation/worker", {"quantity": 2})
        wait_until(lambda: all(d.status == "failed" for d in emulator.webhooks.of(APP))
                   and len(emulator.webhooks.of(APP)) == 2)
    finally:
        running.stop()
    attempts = {d.webhook.level: len(d.attempts) for d in emulator.webhooks.of(APP)}
    assert attempts == {"sync": emulator.webhooks.sync_attempts, "notify": 1}
    assert len(receiver.received) == emulator.webhooks.sync_attempts + 1
    # Without a secret there is no signature header, as on Heroku.
    assert all("heroku-webhook-hmac-sha256" not in h for h, _ in receiver.received)


def test_connection_pooling_refused_on_essential(api: httpx.Client, app: EmulatedApp) -> None:
    body = call(api, "POST", f"/client/v11/databases/{app.addon.name}/connection-pooling",
                {"name": None, "credential": "default", "app": APP}, expect=422)
    assert body["message"] == "You can't perform this operation on Essential-tier databases."
    assert app.pooling_attachments == []


def test_connection_pooling_on_standard(emulator: HerokuEmulator, api: httpx.Client,
                                        app_dsn: str) -> None:
    big = emulator.add_app("shop-big", database_url=postgres_url(app_dsn), role=APP_ROLE,
                           plan="heroku-postgresql:standard-0")
    body = call(api, "POST", f"/client/v11/databases/{big.addon.name}/connection-pooling",
                {"name": None, "credential": "default", "app": "shop-big"}, expect=201)
    assert body["name"] == "DATABASE_CONNECTION_POOL"
    assert body["namespace"] == "connection-pooling:default"
    assert_matches_schema("GET", f"/addon-attachments/{body['id']}", body)
    assert big.config_vars["DATABASE_CONNECTION_POOL_URL"] == postgres_url(app_dsn)
    assert [a.name for a in big.pooling_attachments] == ["DATABASE_CONNECTION_POOL"]
    rows = call(api, "GET", "/apps/shop-big/addon-attachments", headers=INCLUDING)
    assert [(r["name"], r["config_vars"]) for r in rows] == [
        ("DATABASE", ["DATABASE_URL"]),
        ("DATABASE_CONNECTION_POOL", ["DATABASE_CONNECTION_POOL_URL"])]
    # Resolving DATABASE by add-on name still yields one plain attachment for the CLI.
    again = call(api, "POST", f"/client/v11/databases/{big.addon.name}/connection-pooling",
                 {"credential": "default", "app": "shop-big"}, expect=422)
    assert again["id"] == "invalid_params"


# -- auth, errors, faults ----------------------------------------------------------------------


def test_requests_without_the_key_are_refused(server: RunningServer) -> None:
    expected = {"id": "unauthorized", "message": "Invalid credentials provided."}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        response = httpx.get(f"{server.url}/apps/{APP}", headers=headers)
        assert response.status_code == 401 and response.json() == expected
    data = httpx.get(f"{server.url}/client/v11/databases/x", headers={"Authorization": "Bearer no"})
    assert data.status_code == 401
    basic = httpx.get(f"{server.url}/apps/{APP}", auth=("", API_KEY), headers={"Accept": VERSION_3})
    assert basic.status_code == 200


def test_unknown_app_route_and_verb(api: httpx.Client) -> None:
    assert call(api, "GET", "/apps/no-such-app", expect=404) == {
        "id": "not_found", "message": "Couldn't find that app.", "resource": "app"}
    call(api, "DELETE", "/apps/no-such-app/dynos", expect=404)
    for method, path in (("GET", "/nowhere"), ("POST", "/apps/shop-api/dynos")):
        body = call(api, method, path, expect=404)
        assert body["id"] == "not_found" and "API endpoint was not found" in body["message"]


def test_malformed_request_body(api: httpx.Client) -> None:
    response = api.patch(f"/apps/{APP}/config-vars", content=b"{nope",
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["id"] == "bad_request"


def test_injected_rate_limit_then_recovery(emulator: HerokuEmulator, api: httpx.Client) -> None:
    emulator.inject(path="/formation", status=429, retry_after=2, times=2)
    for _ in range(2):
        response = api.get(f"/apps/{APP}/formation")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.json()["id"] == "rate_limit"
    assert api.get(f"/apps/{APP}/formation").status_code == 200
    assert emulator.faults == []


def test_injected_server_error_matches_method(emulator: HerokuEmulator, api: httpx.Client) -> None:
    emulator.inject(path="/dynos", method="DELETE", status=503)
    assert api.get(f"/apps/{APP}/dynos").status_code == 200  # GET does not match
    response = api.delete(f"/apps/{APP}/dynos")
    assert response.status_code == 503 and response.json()["id"] == "service_unavailable"
    emulator.inject(status=500)  # empty path: the very next request, whatever it is
    assert call(api, "GET", "/account", expect=500)["id"] == "internal_server_error"


def test_injected_malformed_body(emulator: HerokuEmulator, api: httpx.Client,
                                 app: EmulatedApp) -> None:
    emulator.inject(path="/client/v11/databases/", status=200, body=b"{not json")
    response = api.get(f"/client/v11/databases/{app.addon.id}")
    assert response.status_code == 200 and response.content == b"{not json"
    with pytest.raises(ValueError):
        response.json()


def test_injected_delay_trips_client_timeouts(emulator: HerokuEmulator, api: httpx.Client,
                                              server: RunningServer) -> None:
    emulator.inject(path="/dynos", delay=0.5, status=504)
    with pytest.raises(httpx.ReadTimeout):
        api.get(f"/apps/{APP}/dynos", timeout=0.1)
    # status 200 with a delay: slow, but the real answer.
    emulator.inject(path="/formation", delay=0.3, status=200)
    started = time.monotonic()
    body = call(api, "GET", f"/apps/{APP}/formation")
    assert time.monotonic() - started >= 0.3 and body[0]["type"] == "web"


def test_latency_applies_to_every_request(emulator: HerokuEmulator, api: httpx.Client) -> None:
    emulator.latency = 0.1
    started = time.monotonic()
    api.get("/account")
    httpx.get(f"{api.base_url}/account")  # even unauthenticated ones
    assert time.monotonic() - started >= 0.2


def test_requests_are_recorded(emulator: HerokuEmulator, api: httpx.Client) -> None:
    api.patch(f"/apps/{APP}/config-vars", json={"FOO": "bar"})
    recorded = [r for r in emulator.requests if r.method == "PATCH"]
    assert len(recorded) == 1
    assert recorded[0].path == f"/apps/{APP}/config-vars"
    assert recorded[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert json.loads(recorded[0].body) == {"FOO": "bar"}
    assert recorded[0].time <= time.time()


def test_add_app_validates_names(emulator: HerokuEmulator, app_dsn: str) -> None:
    with pytest.raises(ValueError):
        emulator.add_app("Bad_Name", database_url=app_dsn, role=APP_ROLE)
    with pytest.raises(ValueError):
        emulator.add_app(APP, database_url=app_dsn, role=APP_ROLE)


def test_database_unreachable(shared_server: tuple[RunningServer, SwappableApp],
                              app_dsn: str) -> None:
    # An admin DSN to a closed port: the database is down, Heroku's API is not.
    dead = HerokuEmulator(admin_dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
                          api_key=API_KEY)
    app = dead.add_app(APP, database_url=postgres_url(app_dsn), role=APP_ROLE)
    running, swap = shared_server
    swap.target = dead.app
    try:
        with httpx.Client(base_url=running.url, timeout=10,
                          headers={"Authorization": f"Bearer {API_KEY}", "Accept": VERSION_3}) as api:
            # Dynos restart whether or not the database answers.
            call(api, "DELETE", f"/apps/{APP}/dynos", expect=202)
            assert app.restarts[-1].terminated == 0
            for method, path in (("GET", f"/client/v11/databases/{app.addon.id}"),
                                 ("POST", f"/client/v11/databases/{app.addon.id}/connection_reset")):
                assert call(api, method, path, expect=503)["id"] == "service_unavailable"
    finally:
        swap.target = None
