"""Settings from the environment, and the Digest / Colour edge cases."""

from __future__ import annotations

import pytest

from bluegreen.config import Settings
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import INITIAL_CANARY, Colour, Digest, Role
from bluegreen.variables import parse_hooks

HEX = "7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678"


# settings -------------------------------------------------------------------------------


def test_settings_default_to_the_original_system() -> None:
    settings = Settings.from_env({})
    assert settings.namespace == "wp-platform"
    assert settings.deployment_name(Colour.BLUE) == "blue-deployment"
    assert settings.container_name == "web"
    assert settings.configmap_key == "canaryEnv"
    assert settings.hooks[0].command == ("wp", "cache", "flush", "--allow-root")


def test_settings_read_our_prefixed_variables_only() -> None:
    # GIVEN host variables with generic names next to ours
    settings = Settings.from_env(
        {
            "NAMESPACE": "not-ours",
            "BG_NAMESPACE": "shop",
            "BG_REPOSITORY_NAME": "shop-web",
            "BG_AUTO_DEPLOY_TAGS": " dev, staging ,,",
            "BG_LOCK_LEASE_SECONDS": "120",
            "BG_LEDGER_TABLE_NAME": "stack-LedgerTable-1",
            "AWS_REGION": "eu-west-1",
        }
    )
    # THEN only the BG_ ones count, lists are trimmed, numbers are numbers
    assert settings.namespace == "shop"
    assert settings.repository == "shop-web"
    assert settings.auto_deploy_tags == ("dev", "staging")
    assert settings.lock_lease_seconds == 120
    assert settings.ledger_table == "stack-LedgerTable-1"
    assert settings.region == "eu-west-1"


def test_an_empty_auto_deploy_list_disables_auto_deploy() -> None:
    assert Settings.from_env({"BG_AUTO_DEPLOY_TAGS": ""}).auto_deploy_tags == ()


def test_a_bad_number_names_the_variable() -> None:
    with pytest.raises(InvalidInput, match="BG_LOCK_LEASE_SECONDS"):
        Settings.from_env({"BG_LOCK_LEASE_SECONDS": "soon"})


@pytest.mark.parametrize(
    ("raw", "culprit"),
    [
        ("not json", "BG_HOOKS"),
        ('{"name": "x"}', "BG_HOOKS"),
        ('[{"command": "wp"}]', "BG_HOOKS[0].name"),
        ('[{"name": "x", "command": []}]', "BG_HOOKS[0].command"),
        ('[{"name": "x", "command": "wp", "onFailure": "ignore"}]', "BG_HOOKS[0].onFailure"),
        ('[{"name": "x", "command": "wp", "timeoutSeconds": 0}]', "BG_HOOKS[0].timeoutSeconds"),
    ],
)
def test_bad_hooks_name_the_culprit(raw: str, culprit: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_hooks(raw)
    assert caught.value.field == culprit


def test_hooks_accept_a_command_string() -> None:
    (hook,) = parse_hooks('[{"name": "flush", "command": "wp cache flush --allow-root"}]')
    assert hook.command == ("wp", "cache", "flush", "--allow-root")
    assert hook.on_failure == "rollback"


# digests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [HEX, f"sha256:{HEX}", f"  sha256:{HEX}\n"])
def test_a_digest_accepts_prefixed_and_bare_hex(value: str) -> None:
    digest = Digest.parse(value)
    assert str(digest) == f"sha256:{HEX}"
    assert digest.short == HEX[:12]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (HEX[:-1], "63 characters"),
        (HEX + "0", "65 characters"),
        (HEX.upper(), "lowercase hex"),
        (f"sha512:{HEX}", "only sha256"),
        (f"sha256:{HEX[:10]}", "10 characters"),
        ("dev", "not a sha256 digest"),
        ("", "0 characters"),
        (f"sha256:{'g' * 64}", "not a sha256 digest"),
    ],
)
def test_a_digest_rejects_everything_else_saying_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        Digest.parse(value)


@pytest.mark.parametrize("value", [None, 42, ["sha256:" + HEX]])
def test_a_digest_must_be_a_string(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        Digest.parse(value, field_name="imageTag")


def test_looks_like_tells_digests_from_tags() -> None:
    assert Digest.looks_like(HEX)
    assert Digest.looks_like("sha256:anything")
    assert not Digest.looks_like("dev")
    assert not Digest.looks_like(HEX[:40])


@pytest.mark.parametrize(
    "value",
    [f"sha512:{HEX}", f"SHA256:{HEX}", HEX.upper(), f"repo@sha256:{HEX}", "v1.2@beta", "a:b"],
)
def test_anything_with_a_colon_an_at_or_64_hex_in_any_case_is_not_a_tag(value: str) -> None:
    assert Digest.looks_like(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (
            f"123456789012.dkr.ecr.us-west-2.amazonaws.com/app@sha256:{HEX}",
            "pass the digest (sha256:<hex>), not the image reference",
        ),
        (f"SHA256:{HEX}", "digests are lowercase"),
        (f"Sha256:{HEX}", "digests are lowercase"),
        (f"sha256:{HEX.upper()}", "digests are lowercase"),
        (HEX.upper(), "digests are lowercase"),
        (f"sha512:{HEX}", "only sha256"),
    ],
)
def test_a_digest_that_is_nearly_right_gets_a_message_that_helps(value: str, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Digest.parse(value, field_name="imageTag")

    assert raised.value.field == "imageTag"
    assert says in raised.value.problem


# colours -----------------------------------------------------------------------------------


def test_colours_are_blue_and_green_and_the_initial_canary_is_blue() -> None:
    assert [c.value for c in Colour] == ["blue", "green"]
    assert INITIAL_CANARY is Colour.BLUE
    assert Colour.BLUE.other is Colour.GREEN
    assert Colour.GREEN.other is Colour.BLUE


@pytest.mark.parametrize("value", ["Blue", "red", "", None, 1, " green"])
def test_anything_but_blue_or_green_is_not_a_colour(value: object) -> None:
    with pytest.raises(InvalidInput, match="expected 'blue' or 'green'"):
        Colour.parse(value)


def test_a_role_is_canary_or_production() -> None:
    assert Role.parse("production") is Role.PRODUCTION
    with pytest.raises(InvalidInput, match="service"):
        Role.parse("staging")
