"""The webhook contract against a programmable stand-in: every answer and every rejection."""

from __future__ import annotations

import json
import time

import pytest

from tests.gateway.conftest import NEW_SECRET, OLD_SECRET
from tests.gateway.standin import StandIn
from tests.gateway.support import (
    GatewayProcess,
    deliver,
    new_event,
    post_event,
    request,
    sign,
)


@pytest.mark.parametrize("outcome", ["applied", "duplicate", "ignored", "stale"])
def test_outcomes_answer_200_with_status_and_event_id(
    gateway: GatewayProcess, standin: StandIn, outcome: str
) -> None:
    event = new_event(outcome)
    answer = deliver(gateway, event, NEW_SECRET)
    assert answer.status == 200
    assert answer.json == {"status": outcome, "event_id": event["id"]}
    assert standin.count(event["id"]) == 1


@pytest.mark.parametrize("secret", [OLD_SECRET, NEW_SECRET])
def test_every_configured_secret_passes(
    gateway: GatewayProcess, standin: StandIn, secret: str
) -> None:
    event = new_event()
    assert deliver(gateway, event, secret).status == 200
    assert standin.count(event["id"]) == 1


def test_created_is_never_judged(gateway: GatewayProcess, standin: StandIn) -> None:
    # A retry Stripe sends days later keeps the old `created` but is freshly signed.
    event = new_event(created=int(time.time()) - 3 * 86400)
    assert deliver(gateway, event, NEW_SECRET).status == 200


def _rejected(gateway: GatewayProcess, standin: StandIn, body: bytes, signature: str | None):
    before = len(standin.received)
    answer = post_event(gateway, body, signature)
    assert len(standin.received) == before, "a rejected delivery was forwarded"
    return answer


def test_missing_signature(gateway: GatewayProcess, standin: StandIn) -> None:
    body = json.dumps(new_event()).encode()
    answer = _rejected(gateway, standin, body, None)
    assert (answer.status, answer.json) == (400, {"error": "missing_signature"})


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=notanumber,v1=abc",
        "t=1700000000",
        "v1=deadbeef",
        "t=1700000000,v0=deadbeef",
    ],
)
def test_malformed_signature_header(gateway: GatewayProcess, standin: StandIn, header: str) -> None:
    body = json.dumps(new_event()).encode()
    answer = _rejected(gateway, standin, body, header)
    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


def test_signature_with_unknown_secret(gateway: GatewayProcess, standin: StandIn) -> None:
    body = json.dumps(new_event()).encode()
    answer = _rejected(gateway, standin, body, sign(body, "whsec_someone_else"))
    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


def test_tampered_body(gateway: GatewayProcess, standin: StandIn) -> None:
    event = new_event()
    body = json.dumps(event).encode()
    signature = sign(body, NEW_SECRET)
    event["type"] = "customer.subscription.deleted"
    answer = _rejected(gateway, standin, json.dumps(event).encode(), signature)
    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


def test_timestamp_outside_tolerance(gateway: GatewayProcess, standin: StandIn) -> None:
    body = json.dumps(new_event()).encode()
    signature = sign(body, NEW_SECRET, timestamp=int(time.time()) - 301)
    answer = _rejected(gateway, standin, body, signature)
    assert (answer.status, answer.json) == (400, {"error": "timestamp_outside_tolerance"})


def test_old_timestamp_with_bad_signature_is_a_bad_signature(
    gateway: GatewayProcess, standin: StandIn
) -> None:
    body = json.dumps(new_event()).encode()
    signature = sign(body, "whsec_someone_else", timestamp=int(time.time()) - 3600)
    answer = _rejected(gateway, standin, body, signature)
    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


def test_body_over_the_limit(gateway: GatewayProcess, standin: StandIn) -> None:
    event = new_event(padding="x" * (1024 * 1024))
    body = json.dumps(event).encode()
    answer = _rejected(gateway, standin, body, sign(body, NEW_SECRET))
    assert (answer.status, answer.json) == (413, {"error": "body_too_large"})


@pytest.mark.parametrize(
    "body",
    [b'{"id": "evt_x", ', b"[1, 2]", b"null", b'"text"', b"[" * 5000 + b"]" * 5000],
)
def test_signed_malformed_json(gateway: GatewayProcess, standin: StandIn, body: bytes) -> None:
    answer = _rejected(gateway, standin, body, sign(body, NEW_SECRET))
    assert (answer.status, answer.json) == (400, {"error": "malformed_json"})


def test_body_that_is_not_utf8(gateway: GatewayProcess, standin: StandIn) -> None:
    body = b'{"id": "evt_\xff"}'
    answer = _rejected(gateway, standin, body, "t=1,v1=00")
    assert (answer.status, answer.json) == (400, {"error": "invalid_signature"})


@pytest.mark.parametrize("kind, code", [("unavailable", "UNAVAILABLE"), ("internal", "INTERNAL")])
def test_service_errors_other_than_invalid_answer_503(
    gateway: GatewayProcess, standin: StandIn, kind: str, code: str
) -> None:
    event = new_event(kind)
    answer = deliver(gateway, event, NEW_SECRET)
    assert answer.status == 503
    assert answer.json == {"error": "billing_unavailable", "code": code, "event_id": event["id"]}


def test_deadline_answers_503(gateway: GatewayProcess, standin: StandIn) -> None:
    event = new_event("slow")
    answer = deliver(gateway, event, NEW_SECRET)
    assert answer.status == 503
    assert answer.json["code"] == "DEADLINE_EXCEEDED"


def test_probes_and_metrics(gateway: GatewayProcess) -> None:
    assert request(gateway.host, gateway.port, "GET", "/healthz").json == {"status": "ok"}
    assert request(gateway.host, gateway.port, "GET", "/readyz").json == {"status": "ready"}
    metrics = request(gateway.host, gateway.port, "GET", "/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert 'billing_gateway_responses_total{reason="applied",status="200"}' in text
    assert "billing_gateway_forward_seconds_bucket" in text


def test_unknown_route_and_method_answer_json(gateway: GatewayProcess) -> None:
    missing = request(gateway.host, gateway.port, "GET", "/nope")
    assert (missing.status, missing.json) == (404, {"error": "not_found"})
    wrong = request(gateway.host, gateway.port, "GET", "/webhooks/stripe")
    assert (wrong.status, wrong.json) == (405, {"error": "method_not_allowed"})
