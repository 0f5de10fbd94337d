"""The typed environment reader shared by the service's and the gateway's settings."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing_service.env_settings import EnvReader, SettingsError, SettingSpec, default_of

SPECS = (
    SettingSpec("A_NUMBER", "2.5", "a number"),
    SettingSpec("A_COUNT", "3", "an integer"),
    SettingSpec("A_FLAG", "false", "a bool"),
    SettingSpec("A_MODE", "json", "a choice"),
    SettingSpec("A_LIST", "", "comma-separated"),
)


def test_unset_or_blank_variables_take_their_declared_default() -> None:
    read = EnvReader(SPECS, {"A_NUMBER": "   "})
    assert read.number("A_NUMBER") == 2.5
    assert read.integer("A_COUNT") == 3
    assert read.boolean("A_FLAG") is False
    assert read.choice("A_MODE", ("json", "text")) == "json"
    assert read.items("A_LIST") == ()


def test_values_are_parsed_and_trimmed() -> None:
    env = {
        "A_NUMBER": " 0.25 ",
        "A_COUNT": "7",
        "A_FLAG": "Yes",
        "A_MODE": "TEXT",
        "A_LIST": "x, y,",
    }
    read = EnvReader(SPECS, env)
    assert read.number("A_NUMBER") == 0.25
    assert read.integer("A_COUNT") == 7
    assert read.boolean("A_FLAG") is True
    assert read.choice("A_MODE", ("json", "text")) == "text"
    assert read.items("A_LIST") == ("x", "y")


@pytest.mark.parametrize(
    ("env", "read", "message"),
    [
        ({"A_NUMBER": "soon"}, lambda r: r.number("A_NUMBER"), "A_NUMBER must be a number"),
        ({"A_COUNT": "1.5"}, lambda r: r.integer("A_COUNT"), "A_COUNT must be an integer"),
        ({"A_FLAG": "maybe"}, lambda r: r.boolean("A_FLAG"), "A_FLAG must be true or false"),
        ({"A_MODE": "xml"}, lambda r: r.choice("A_MODE", ("json",)), "A_MODE must be one of json"),
        ({"A_NUMBER": "0"}, lambda r: r.positive("A_NUMBER"), "A_NUMBER must be greater than 0"),
        ({"A_NUMBER": "0.5"}, lambda r: r.at_least("A_NUMBER", 1), "A_NUMBER must be at least 1"),
    ],
)
def test_an_unusable_value_names_its_variable(
    env: dict[str, str], read: Callable[[EnvReader], object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        read(EnvReader(SPECS, env))


def test_default_of_reads_the_declaration() -> None:
    assert default_of(SPECS, "A_COUNT") == "3"
    with pytest.raises(KeyError):
        default_of(SPECS, "NOT_DECLARED")
