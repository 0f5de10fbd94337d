"""Typed reads of environment-variable settings, shared by the service and the gateway.

Each program declares its variables once, as ``SettingSpec`` rows (name,
default, meaning); the same rows drive ``--help`` (``settings_help``) and
the README's tables, and ``EnvReader`` reads values through them, so a
default is written in exactly one place. An unset or blank variable takes
its default; a value that cannot be used raises ``SettingsError`` naming the
variable::

    read = EnvReader(SETTINGS, os.environ)
    read.number("STRIPE_TIMEOUT_SECONDS")  # 10.0 unless set
    read.boolean("BILLING_INSECURE_NO_AUTH")  # true/false, yes/no, on/off, 1/0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting has a value the program cannot use; the message names the variable."""


@dataclass(frozen=True)
class SettingSpec:
    """One environment variable: its name, default and meaning."""

    env: str
    default: str
    help: str


def default_of(specs: Iterable[SettingSpec], name: str) -> str:
    """The default ``specs`` declare for ``name`` (KeyError when undeclared)."""
    for spec in specs:
        if spec.env == name:
            return spec.default
    raise KeyError(name)


class EnvReader:
    """Reads the variables declared in ``specs`` from ``env``, parsed and checked."""

    def __init__(self, specs: Iterable[SettingSpec], env: Mapping[str, str]) -> None:
        self._defaults = {spec.env: spec.default for spec in specs}
        self._env = env

    def text(self, name: str) -> str:
        """The stripped value of ``name``, or its default when unset or blank."""
        return self._env.get(name, "").strip() or self._defaults[name]

    def number(self, name: str) -> float:
        """``name`` as a finite float (``nan`` would pass every range check)."""
        raw = self.text(name)
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        return value

    def positive(self, name: str) -> float:
        """``name`` as a float greater than 0."""
        value = self.number(name)
        if value <= 0:
            raise SettingsError(f"{name} must be greater than 0, got {value:g}")
        return value

    def at_least(self, name: str, minimum: float) -> float:
        """``name`` as a float no smaller than ``minimum``."""
        value = self.number(name)
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum:g}, got {self.text(name)!r}")
        return value

    def integer(self, name: str) -> int:
        """``name`` as an int."""
        raw = self.text(name)
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

    def boolean(self, name: str) -> bool:
        """``name`` as a bool: 1/true/yes/on or 0/false/no/off, any case."""
        raw = self.text(name).lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """``name`` lowercased, which must be one of ``choices``."""
        raw = self.text(name).lower()
        if raw not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    def url(self, name: str, schemes: tuple[str, ...]) -> str:
        """``name`` as a URL with one of ``schemes``, or "" when unset without a default.

        The error never quotes the value: a URL may carry a password.
        """
        raw = self.text(name)
        if raw and urlsplit(raw).scheme not in schemes:
            allowed = ", ".join(f"{scheme}://" for scheme in schemes)
            raise SettingsError(f"{name} must start with {allowed} (value not shown)")
        return raw

    def items(self, name: str) -> tuple[str, ...]:
        """``name`` as a comma-separated list of non-empty, stripped items."""
        return comma_separated(self.text(name))


def comma_separated(raw: str) -> tuple[str, ...]:
    """The non-empty, stripped items of a comma-separated setting."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def settings_help(specs: Iterable[SettingSpec]) -> str:
    """The settings table for ``--help``: name, default, meaning."""
    rows = tuple(specs)
    width = max(len(spec.env) for spec in rows)
    lines = ["environment variables:"]
    for spec in rows:
        default = spec.default or "(unset)"
        lines.append(f"  {spec.env:<{width}}  {spec.help} [default: {default}]")
    return "\n".join(lines)
