"""The auth policy file: the shipped example, and bad entries named at load."""

from __future__ import annotations

import pytest

from billing_service.auth import PolicyError, is_loopback, load_policy, parse_policy, token_hash
from tests.support.processes import REPO_ROOT


def test_example_policy_gives_apply_stripe_event_to_the_gateway_alone() -> None:
    policy = load_policy(REPO_ROOT / "auth.example.toml")
    holders = [name for name, caller in policy.items() if "ApplyStripeEvent" in caller.rpcs]
    assert holders == ["webhook-gateway"]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({}, "callers"),
        ({"callers": {"a": {"rpcs": ["Nope"]}}}, "callers.a.rpcs names unknown RPCs: Nope"),
        ({"callers": {"a": {"rpcs": "GetSubscription"}}}, "callers.a.rpcs"),
        ({"callers": {"a": {"token_sha256": ["abc"]}}}, "callers.a.token_sha256"),
        ({"callers": {"a": "x"}}, "callers.a must be a table"),
    ],
)
def test_bad_entries_are_named(data: dict[str, object], named: str) -> None:
    with pytest.raises(PolicyError, match=named):
        parse_policy(data)


def test_token_hash_is_sha256_hex() -> None:
    digest = token_hash("secret-token")
    assert len(digest) == 64
    assert digest != token_hash("secret-token2")


@pytest.mark.parametrize(
    ("addr", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:1", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("10.0.0.5:50051", False),
        ("[::]:50051", False),
        ("127.9.9.9:1", True),
        ("127.1.2.3.example:1", False),
        (":50051", False),
    ],
)
def test_loopback_detection(addr: str, loopback: bool) -> None:
    assert is_loopback(addr) is loopback
