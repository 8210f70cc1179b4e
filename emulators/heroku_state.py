"""State of the Heroku emulator: apps, their add-on, formation, dynos, drains — and their JSON.

Each record renders itself exactly as the Platform API schema
(`contracts/heroku-platform-api.schema.json`) describes it, with every property the
schema's `strictProperties` asks for, so clients are tested against the full shape
rather than the fields they happen to read today.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]

POSTGRES_SERVICE = "heroku-postgresql"
# Server-side pooling attachments carry this namespace, which is how the CLI's resolver
# tells them apart from the plain DATABASE attachment of the same add-on.
POOLING_NAMESPACE = "connection-pooling:default"

# The schema's own pattern for app names; web_url and git_url patterns derive from it.
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")

# Per-credential connection limits (Heroku Postgres plan pages; README of contracts/).
_CONNECTION_LIMITS = {
    "hobby-dev": 20,
    "hobby-basic": 20,
    "dev": 20,
    "basic": 20,
    "mini": 20,
    "essential-0": 20,
    "essential-1": 20,
    "essential-2": 40,
    "standard-0": 120,
    "premium-0": 120,
    "private-0": 120,
    "shield-0": 120,
    "standard-2": 400,
    "premium-2": 400,
    "private-2": 400,
    "shield-2": 400,
}
_LARGEST_LIMIT = 500

# Storage allowance shown as "Data Size: 8.9 MB / 1 GB (0.87%)".
_STORAGE_BYTES = {
    "essential-0": 1 << 30,
    "essential-1": 10 << 30,
    "essential-2": 32 << 30,
    "standard-0": 64 << 30,
    "premium-0": 64 << 30,
    "standard-2": 256 << 30,
    "premium-2": 256 << 30,
}
# Legacy hobby/mini/basic plans were limited by rows, not bytes.
_ROW_LIMITS = {"hobby-dev": 10_000, "dev": 10_000, "mini": 10_000, "hobby-basic": 10_000_000,
               "basic": 10_000_000}
_PRICES_CENTS = {
    "hobby-dev": 0, "dev": 0, "mini": 500, "hobby-basic": 900, "basic": 900,
    "essential-0": 500, "essential-1": 900, "essential-2": 2000,
    "standard-0": 5000, "standard-2": 20000, "premium-0": 20000, "premium-2": 35000,
}


def connection_limit(plan: str) -> int:
    """Connections allowed per credential on a Heroku Postgres plan ("essential-0" → 20)."""
    return _CONNECTION_LIMITS.get(_short(plan), _LARGEST_LIMIT)


def storage_limit(plan: str) -> int | None:
    return _STORAGE_BYTES.get(_short(plan))


def row_limit(plan: str) -> int | None:
    return _ROW_LIMITS.get(_short(plan))


def is_essential_tier(plan: str) -> bool:
    """Multi-tenant plans: no server-side pooling, no metrics, no fork/follow."""
    short = _short(plan)
    return short.startswith("essential") or short in {"hobby-dev", "hobby-basic", "dev", "mini",
                                                        "basic"}


def display_plan(plan: str) -> str:
    """How pg:info names a plan: "essential-0" → "Essential 0", "hobby-dev" → "Hobby-dev"."""
    short = _short(plan)
    word, _, number = short.rpartition("-")
    if word and number.isdigit():
        return f"{word.capitalize()} {number}"
    return short.capitalize()


def _short(plan: str) -> str:
    return plan.split(":", 1)[-1]


def iso(moment: datetime) -> str:
    """Heroku's timestamp format: second precision, UTC, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stable_uuid(*parts: str) -> str:
    """A uuid that is the same every run for the same inputs (plan ids, region ids ...)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "heroku-emulator:" + ":".join(parts)))


def new_uuid() -> str:
    return str(uuid.uuid4())


def buildpack_name(url: str) -> str:
    """The registry name Heroku reports for a buildpack given by name, urn or registry URL."""
    stripped = url.removeprefix("urn:buildpack:")
    match = re.fullmatch(
        r"https://buildpack-registry\.s3\.amazonaws\.com/buildpacks/([\w-]+/[\w-]+)\.tgz", stripped
    )
    if match:
        return match.group(1)
    if re.fullmatch(r"[\w-]+/[\w-]+", stripped):
        return stripped
    return url


@dataclass
class Account:
    id: str = field(default_factory=new_uuid)
    email: str = "oncall@example.com"
    name: str = "On Call"
    created_at: datetime = field(default_factory=lambda: now() - timedelta(days=900))

    def to_json(self) -> JSON:
        return {
            "allow_tracking": True,
            "beta": False,
            "created_at": iso(self.created_at),
            "email": self.email,
            "federated": False,
            "id": self.id,
            "identity_provider": None,
            "last_login": iso(now() - timedelta(hours=3)),
            "name": self.name,
            "sms_number": None,
            "suspended_at": None,
            "delinquent_at": None,
            "two_factor_authentication": True,
            "updated_at": iso(self.created_at + timedelta(days=30)),
            "verified": True,
            "country_of_residence": "United States",
            "default_organization": None,
            "default_team": None,
        }


@dataclass
class Addon:
    """The app's heroku-postgresql add-on (one per app: the database the bot watches)."""

    id: str
    name: str  # "postgresql-curved-12345"
    plan: str  # short plan name, "essential-0"
    created_at: datetime
    # What pg:info says the limit is, when it is not the plan table's (Postgres Advanced compute
    # sizes allow 380 to 5,000; a plan's limit may change): tests set it to disagree with the table.
    connection_limit: int | None = None

    @property
    def plan_name(self) -> str:
        return f"{POSTGRES_SERVICE}:{self.plan}"

    def plan_json(self) -> JSON:
        return {"id": stable_uuid("plan", self.plan_name), "name": self.plan_name}


@dataclass
class Attachment:
    id: str
    name: str  # "DATABASE", "DATABASE_CONNECTION_POOL"
    config_var: str  # "DATABASE_URL"
    created_at: datetime
    namespace: str | None = None


@dataclass
class Formation:
    """One process type: `quantity` dynos of `size` running `command`."""

    type: str
    quantity: int
    command: str
    size: str
    id: str = field(default_factory=new_uuid)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)


@dataclass
class EmulatedDyno:
    """One dyno. State is computed from when it (re)started: no background tasks needed."""

    name: str  # "web.1"
    type: str
    command: str
    size: str
    release_id: str
    release_version: int
    boot_seconds: float
    id: str = field(default_factory=new_uuid)
    started_at: datetime = field(default_factory=now)
    started_monotonic: float = field(default_factory=time.monotonic)
    forced_state: str | None = None  # tests may pin "crashed", "down", "idle"

    @property
    def state(self) -> str:
        if self.forced_state:
            return self.forced_state
        return "starting" if self._booting else "up"

    @property
    def _booting(self) -> bool:
        return time.monotonic() - self.started_monotonic < self.boot_seconds

    @property
    def updated_at(self) -> datetime:
        if self.forced_state or self._booting:
            return self.started_at
        return self.started_at + timedelta(seconds=self.boot_seconds)


@dataclass
class Release:
    id: str
    version: int
    description: str
    created_at: datetime
    # The slug it runs: a deploy makes a new one; a config change keeps the previous release's.
    slug_id: str | None = None


@dataclass
class Slug:
    """What a build produced: its Procfile's process types (and what the buildpacks said)."""

    id: str
    process_types: dict[str, str]
    buildpack_provided_description: str
    created_at: datetime
    commit: str | None = None


@dataclass
class Build:
    """One build of a source blob with the app's buildpacks at the time, in their order."""

    id: str
    buildpacks: list[str]
    source_url: str
    source_version: str | None
    slug_id: str
    release_id: str | None
    created_at: datetime
    status: str = "succeeded"


@dataclass
class LogDrain:
    id: str
    url: str
    token: str
    created_at: datetime


@dataclass
class Webhook:
    id: str
    url: str
    include: list[str]
    level: str
    secret: str | None
    authorization: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RestartRecord:
    """One restart the emulator performed, for tests to assert on."""

    target: str  # "all", a process type ("web") or a dyno name ("web.1")
    dynos: tuple[str, ...]
    terminated: int  # backends of the app's role terminated in the real Postgres
    at: datetime
    reason: str  # "api" (a restart call), "release" (config change), "scale" (size change)


@dataclass
class EmulatedApp:
    """Everything the emulator knows about one app. Tests may read and change it freely."""

    name: str
    id: str
    role: str  # the database role whose backends dyno restarts and resets terminate
    database_url: str
    addon: Addon
    attachments: list[Attachment]
    config_vars: dict[str, str]
    buildpacks: list[str]
    formation: dict[str, Formation]
    dynos: dict[str, EmulatedDyno]
    releases: list[Release]
    created_at: datetime
    owner: Account
    boot_seconds: float
    log_drains: list[LogDrain] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    restarts: list[RestartRecord] = field(default_factory=list)
    slugs: dict[str, Slug] = field(default_factory=dict)
    builds: list[Build] = field(default_factory=list)
    connection_resets: list[int] = field(default_factory=list)  # backends terminated per reset
    # Where DATABASE_CONNECTION_POOL_URL points when server-side pooling is attached. The
    # emulator has no pooler of its own, so by default it is the database itself.
    pool_url: str | None = None
    web_host: str = ""

    @property
    def plan(self) -> str:
        return self.addon.plan

    @property
    def pooling_attachments(self) -> list[Attachment]:
        return [a for a in self.attachments if a.namespace == POOLING_NAMESPACE]

    @property
    def current_release(self) -> Release:
        return self.releases[-1]

    @property
    def updated_at(self) -> datetime:
        return self.current_release.created_at

    def add_release(self, description: str, slug_id: str | None = None) -> Release:
        """A new release; on the previous release's slug unless a build gave a new one."""
        slug = slug_id or self.current_release.slug_id
        release = Release(new_uuid(), self.current_release.version + 1, description, now(), slug)
        self.releases.append(release)
        return release

    def new_dyno(self, formation: Formation, number: int) -> EmulatedDyno:
        release = self.current_release
        return EmulatedDyno(
            name=f"{formation.type}.{number}",
            type=formation.type,
            command=formation.command,
            size=formation.size,
            release_id=release.id,
            release_version=release.version,
            boot_seconds=self.boot_seconds,
        )

    def sync_dynos(self) -> list[str]:
        """Make the dyno list match formation quantities; return the names removed."""
        removed: list[str] = []
        for name, dyno in list(self.dynos.items()):
            form = self.formation.get(dyno.type)
            number = int(name.rsplit(".", 1)[1])
            if form is None or number > form.quantity:
                removed.append(name)
                del self.dynos[name]
        for form in self.formation.values():
            for number in range(1, form.quantity + 1):
                name = f"{form.type}.{number}"
                if name not in self.dynos:
                    self.dynos[name] = self.new_dyno(form, number)
                else:
                    # Commands and sizes follow the formation, as a new release would.
                    self.dynos[name].command = form.command
                    self.dynos[name].size = form.size
        self.dynos = dict(sorted(self.dynos.items(), key=lambda kv: _dyno_order(kv[0])))
        return removed

    def restart_dynos(self, names: list[str]) -> None:
        """Replace the named dynos with fresh ones (new id, state "starting")."""
        for name in names:
            old = self.dynos[name]
            self.dynos[name] = self.new_dyno(self.formation[old.type], int(name.rsplit(".", 1)[1]))

    # -- JSON ----------------------------------------------------------------------

    def ref(self) -> JSON:
        return {"id": self.id, "name": self.name}

    def to_json(self) -> JSON:
        return {
            "acm": False,
            "archived_at": None,
            "buildpack_provided_description": "Python",
            "build_stack": {"id": stable_uuid("stack", "heroku-24"), "name": "heroku-24"},
            "created_at": iso(self.created_at),
            "generation": {"id": stable_uuid("generation", "cedar"), "name": "cedar"},
            "git_url": f"https://git.heroku.com/{self.name}.git",
            "id": self.id,
            "internal_routing": None,
            "maintenance": False,
            "name": self.name,
            "owner": {"email": self.owner.email, "id": self.owner.id},
            "organization": None,
            "team": None,
            "region": {"id": stable_uuid("region", "us"), "name": "us"},
            "released_at": iso(self.updated_at),
            "repo_size": None,
            "slug_size": 48_234_496,
            "space": None,
            "stack": {"id": stable_uuid("stack", "heroku-24"), "name": "heroku-24"},
            "updated_at": iso(self.updated_at),
            "web_url": f"https://{self.web_host}.herokuapp.com/",
        }

    def addon_ref(self) -> JSON:
        return {"id": self.addon.id, "name": self.addon.name, "app": self.ref()}

    def addon_config_vars(self) -> list[str]:
        return [a.config_var for a in self.attachments]

    def addon_json(self) -> JSON:
        addon = self.addon
        return {
            "actions": [],
            "addon_service": {"id": stable_uuid("addon-service", POSTGRES_SERVICE),
                              "name": POSTGRES_SERVICE},
            "billing_entity": {"id": self.id, "name": self.name, "type": "app"},
            "app": self.ref(),
            "billed_price": {"cents": _PRICES_CENTS.get(addon.plan, 5000), "contract": False,
                             "unit": "month"},
            "config_vars": self.addon_config_vars(),
            "created_at": iso(addon.created_at),
            "id": addon.id,
            "name": addon.name,
            "plan": addon.plan_json(),
            "provider_id": f"resource{int(hashlib.sha1(addon.id.encode()).hexdigest()[:8], 16)}"
                           "@heroku.com",
            "state": "provisioned",
            "updated_at": iso(addon.created_at),
            "web_url": f"https://data.heroku.com/datastores/{addon.id}",
        }

    def attachment_json(self, attachment: Attachment, inclusions: frozenset[str]) -> JSON:
        addon = self.addon_ref()
        body: JSON = {
            "addon": addon,
            "app": self.ref(),
            "created_at": iso(attachment.created_at),
            "id": attachment.id,
            "name": attachment.name,
            "namespace": attachment.namespace,
            "updated_at": iso(attachment.created_at),
            "web_url": f"https://data.heroku.com/datastores/{self.addon.id}",
            "log_input_url": None,
        }
        # `Accept-Inclusion: addon:plan,config_vars` (what the CLI sends) embeds the plan in
        # the add-on and lists the attachment's config vars. The CLI reads config_vars from the
        # attachment; some clients read them from the add-on, so both carry them.
        if "addon:plan" in inclusions:
            addon["plan"] = self.addon.plan_json()
        if "config_vars" in inclusions or "addon:config_vars" in inclusions:
            body["config_vars"] = [attachment.config_var]
            addon["config_vars"] = self.addon_config_vars()
        return body

    def formation_json(self, form: Formation) -> JSON:
        return {
            "app": self.ref(),
            "command": form.command,
            "created_at": iso(form.created_at),
            "dyno_size": {"id": stable_uuid("dyno-size", form.size.lower()), "name": form.size},
            "id": form.id,
            "quantity": form.quantity,
            "size": form.size,
            "type": form.type,
            "updated_at": iso(form.updated_at),
        }

    def dyno_json(self, dyno: EmulatedDyno) -> JSON:
        return {
            "attach_url": None,
            "command": dyno.command,
            "created_at": iso(dyno.started_at),
            "id": dyno.id,
            "name": dyno.name,
            "release": {"id": dyno.release_id, "version": dyno.release_version},
            "app": self.ref(),
            "size": dyno.size,
            "state": dyno.state,
            "type": dyno.type,
            "updated_at": iso(dyno.updated_at),
        }

    def buildpacks_json(self) -> list[JSON]:
        return [
            {"ordinal": i, "buildpack": {"url": url, "name": buildpack_name(url)}}
            for i, url in enumerate(self.buildpacks)
        ]

    def drain_json(self, drain: LogDrain) -> JSON:
        return {
            "addon": None,
            "app": self.ref(),
            "created_at": iso(drain.created_at),
            "id": drain.id,
            "token": drain.token,
            "updated_at": iso(drain.created_at),
            "url": drain.url,
        }

    def webhook_json(self, hook: Webhook) -> JSON:
        return {
            "app": self.ref(),
            "created_at": iso(hook.created_at),
            "id": hook.id,
            "include": list(hook.include),
            "level": hook.level,
            "updated_at": iso(hook.updated_at),
            "url": hook.url,
        }

    def release_json(self, release: Release) -> JSON:
        slug = release.slug_id or stable_uuid("slug", self.id)
        return {
            "addon_plan_names": [self.addon.plan_name],
            "artifacts": [{"type": "slug", "id": slug}],
            "app": self.ref(),
            "created_at": iso(release.created_at),
            "description": release.description,
            "id": release.id,
            "updated_at": iso(release.created_at),
            "slug": {"id": slug},
            "status": "succeeded",
            "user": {"id": self.owner.id, "email": self.owner.email},
            "version": release.version,
            "current": release is self.current_release,
            "output_stream_url": None,
            "eligible_for_rollback": release is not self.current_release,
        }


    def build_json(self, build: Build) -> JSON:
        return {
            "app": {"id": self.id},
            "buildpacks": [{"url": url, "name": buildpack_name(url)} for url in build.buildpacks],
            "created_at": iso(build.created_at),
            "generation": "cedar",
            "id": build.id,
            "output_stream_url": f"https://build-output.heroku.com/streams/{build.id}",
            "source_blob": {
                "checksum": None,
                "url": build.source_url,
                "version": build.source_version,
                "version_description": None,
            },
            "release": {"id": build.release_id} if build.release_id else None,
            "slug": {"id": build.slug_id},
            "stack": "heroku-24",
            "status": build.status,
            "updated_at": iso(build.created_at),
            "user": {"id": self.owner.id, "email": self.owner.email},
        }

    def slug_json(self, slug: Slug) -> JSON:
        return {
            "blob": {"method": "get", "url": f"https://slugs.example.com/{slug.id}.tgz"},
            "buildpack_provided_description": slug.buildpack_provided_description,
            "checksum": None,
            "commit": slug.commit,
            "commit_description": None,
            "created_at": iso(slug.created_at),
            "id": slug.id,
            "process_types": dict(slug.process_types),
            "size": 48_234_496,
            "stack": {"id": stable_uuid("stack", "heroku-24"), "name": "heroku-24"},
            "updated_at": iso(slug.created_at),
            "deleted_at": None,
        }


def _dyno_order(name: str) -> tuple[str, int]:
    kind, _, number = name.rpartition(".")
    return kind, int(number) if number.isdigit() else 0


def addon_name_for(app_name: str) -> str:
    """A Heroku-looking add-on name, stable per app: "postgresql-curved-12345"."""
    words = ["curved", "amorphous", "silhouetted", "rigid", "flat", "cubic", "opaque", "clear",
             "shallow", "regular", "polished", "tapered", "sinuous", "deep", "elliptical"]
    digest = int(hashlib.sha1(app_name.encode()).hexdigest(), 16)
    return f"postgresql-{words[digest % len(words)]}-{digest % 90000 + 10000}"
