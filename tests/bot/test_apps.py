"""Per-app routing (bot.apps, PGCONN_APP_ROUTES): parsed once at start-up, merged with the defaults."""

from __future__ import annotations

import json

import pytest

from bot.apps import DEFAULT_ESCALATE_AFTER_S, AppDirectory, AppEntry
from bot.config import Settings
from bot.errors import ConfigError

KEY = "R0UTINGKEYR0UTINGKEYR0UTINGKEY12"  # 32 characters, as PagerDuty's integration keys
ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "s",
    "HEROKU_API_KEY": "k",
    "PGCONN_APPS": "shop-api,billing,legacy",
    "PGCONN_ADMINS": "UDEFAULT,SDEFAULT",
    "PGCONN_ALERT_CHANNEL": "C0DEFAULT",
}
ROUTES = {
    "shop-api": {
        "channel": "C0SHOP",
        "admins": ["USHOPADMIN", "SSHOPOPS"],
        "pagerduty_routing_key": KEY,
        "escalate_after": "10m",
    },
    "billing": {"admins": "UBILLING"},
}


def settings(routes: object) -> Settings:
    raw = routes if isinstance(routes, str) else json.dumps(routes)
    return Settings.from_env({**ENV, "PGCONN_APP_ROUTES": raw})


def test_each_app_gets_its_own_entry_and_the_defaults_for_what_it_does_not_name() -> None:
    apps = settings(ROUTES).directory
    shop, billing, legacy = apps.for_app("shop-api"), apps.for_app("billing"), apps.for_app("legacy")
    assert (shop.channel, shop.admins, shop.admin_groups) == ("C0SHOP", {"USHOPADMIN"}, {"SSHOPOPS"})
    assert (shop.pagerduty_routing_key, shop.escalate_after_s) == (KEY, 600)
    # Named admins replace the defaults; an unnamed channel falls back to PGCONN_ALERT_CHANNEL.
    assert (billing.channel, billing.admins, billing.admin_groups) == ("C0DEFAULT", {"UBILLING"}, set())
    assert billing.pagerduty_routing_key is None and billing.escalate_after_s is None
    assert (legacy.channel, legacy.admins, legacy.admin_groups) == ("C0DEFAULT", {"UDEFAULT"}, {"SDEFAULT"})
    assert not legacy.own_channel and not legacy.own_admins and shop.own_channel and billing.own_admins
    assert apps.apps_in("C0DEFAULT", ("shop-api", "billing", "legacy")) == ("billing", "legacy")


def test_without_the_variable_every_app_has_todays_channel_and_admins() -> None:
    route = Settings.from_env(ENV).directory.for_app("shop-api")
    assert (route.channel, route.admins, route.admin_groups) == ("C0DEFAULT", {"UDEFAULT"}, {"SDEFAULT"})


def test_a_routing_key_alone_escalates_after_the_default_time() -> None:
    route = settings({"shop-api": {"pagerduty_routing_key": KEY}}).directory.for_app("shop-api")
    assert route.escalate_after_s == DEFAULT_ESCALATE_AFTER_S
    assert (
        settings({"shop-api": {"pagerduty_routing_key": KEY, "escalate_after": 90}})
        .directory.for_app("shop-api")
        .escalate_after_s
        == 90
    )


def test_the_routing_key_is_in_no_repr() -> None:
    s = settings(ROUTES)
    for shown in (
        repr(s),
        repr(s.directory),
        repr(s.directory.for_app("shop-api")),
        repr(AppEntry(pagerduty_routing_key=KEY)),
    ):
        assert KEY not in shown
    assert s.directory.secrets == (KEY,)


@pytest.mark.parametrize(
    ("routes", "says"),
    [
        ("{not json", "PGCONN_APP_ROUTES is not valid JSON"),
        ('["shop-api"]', "PGCONN_APP_ROUTES must be a JSON object"),
        ({"shop-apj": {"channel": "C0SHOP"}}, "PGCONN_APP_ROUTES: 'shop-apj' is not in PGCONN_APPS"),
        ({"shop-api": "C0SHOP"}, "PGCONN_APP_ROUTES: 'shop-api' must be an object"),
        ({"shop-api": {"chanel": "C0SHOP"}}, "PGCONN_APP_ROUTES: 'shop-api' has an unknown key 'chanel'"),
        ({"shop-api": {"channel": "#shop"}}, "PGCONN_APP_ROUTES: 'shop-api': channel must be a channel id"),
        ({"billing": {"admins": ["alice"]}}, "PGCONN_APP_ROUTES: 'billing': admins contains 'alice'"),
        ({"billing": {"admins": {"U1": 1}}}, "PGCONN_APP_ROUTES: 'billing': admins must be a list"),
        (
            {"shop-api": {"pagerduty_routing_key": "short-secret-key"}},
            "PGCONN_APP_ROUTES: 'shop-api': pagerduty_routing_key must be the 32-character integration key",
        ),
        (
            {"shop-api": {"pagerduty_routing_key": KEY, "escalate_after": "soon"}},
            "PGCONN_APP_ROUTES: 'shop-api': escalate_after must be seconds or a duration",
        ),
        (
            {"shop-api": {"pagerduty_routing_key": KEY, "escalate_after": "0s"}},
            "PGCONN_APP_ROUTES: 'shop-api': escalate_after must be more than 0",
        ),
        (
            {"shop-api": {"escalate_after": "5m"}},
            "PGCONN_APP_ROUTES: 'shop-api': escalate_after needs a pagerduty",
        ),
    ],
)
def test_a_malformed_entry_is_named_in_one_line(routes: object, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(routes)
    assert info.value.message.startswith(says), info.value.message
    assert "\n" not in info.value.message
    assert "short-secret-key" not in info.value.message


def test_an_app_not_configured_at_all_gets_the_defaults() -> None:
    apps = AppDirectory({}, default_channel=None, default_admins=())
    route = apps.for_app("other")
    assert route.channel is None and not route.admins and not route.admin_groups


def test_setup_counts_a_channel_and_admins_as_set_when_every_app_has_its_own() -> None:
    from bot.setup_page import steps

    own = {app: {"channel": "C0OWN", "admins": ["UOWNER"]} for app in ("shop-api", "billing", "legacy")}
    bare = {k: v for k, v in ENV.items() if k not in ("PGCONN_ALERT_CHANNEL", "PGCONN_ADMINS")}
    done = {
        s.variable: s.done
        for s in steps(Settings.from_env({**bare, "PGCONN_APP_ROUTES": json.dumps(own)}), True)
    }
    assert done["PGCONN_ALERT_CHANNEL"] and done["PGCONN_ADMINS"]
    # One app left to the (unset) defaults: not done.
    del own["legacy"]
    done = {
        s.variable: s.done
        for s in steps(Settings.from_env({**bare, "PGCONN_APP_ROUTES": json.dumps(own)}), True)
    }
    assert not done["PGCONN_ALERT_CHANNEL"] and not done["PGCONN_ADMINS"]
