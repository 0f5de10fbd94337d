"""Stripe's sample objects (``fixtures3.json``) as templates, plus ids and list objects.

Every builder in this package starts from :meth:`Fixtures.template`, a deep copy
of the sample object, so each object carries every field of the current API
version's shape.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

#: API version stamped on events (the current shape the fixtures follow).
API_VERSION = "2026-10-28.endive"

_ALPHABET = string.ascii_letters + string.digits
_DEFAULT_FIXTURES = Path(__file__).resolve().parents[3] / "tests/fixtures/stripe_fixtures3.json"


def default_fixtures_path() -> Path:
    """``$STRIPE_EMULATOR_FIXTURES`` or the copy under ``tests/fixtures``."""
    return Path(os.environ.get("STRIPE_EMULATOR_FIXTURES") or _DEFAULT_FIXTURES)


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: ``prefix`` plus ``length`` random letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def list_object(data: list[JSON], url: str, has_more: bool = False) -> JSON:
    """A Stripe list object."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


class Fixtures:
    """Stripe's sample objects, handed out as deep copies."""

    def __init__(self, path: Path | None = None) -> None:
        with (path or default_fixtures_path()).open(encoding="utf-8") as handle:
            self._resources: dict[str, JSON] = json.load(handle)["resources"]

    def template(self, name: str) -> JSON:
        """A fresh deep copy of the sample object ``name`` (e.g. ``"subscription"``)."""
        template: JSON = copy.deepcopy(self._resources[name])
        return template
