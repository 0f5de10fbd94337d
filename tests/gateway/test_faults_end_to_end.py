"""Faults over real processes: a service outage, concurrent duplicates, forged deliveries.

Every test counts what was applied: one processed_event row per Stripe event
and at most one audit record per event, before and after the fault.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devtools.waiting import wait_until
from generated.billing.v1 import billing_pb2 as pb
from tests.gateway.support import (
    Answer,
    GatewayProcess,
    post_event,
    request,
    sign,
    signed_at,
    wait_until_stale,
)
from tests.gateway.system import EMULATOR_KEY, SECRET, SYSTEM_WAIT, System, new_user


def metric(gateway: GatewayProcess, status: int, reason: str) -> float:
    """One billing_gateway_responses_total sample (0 when absent)."""
    text = request(gateway.host, gateway.port, "GET", "/metrics").body.decode()
    prefix = f'billing_gateway_responses_total{{reason="{reason}",status="{status}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def audit_per_event(system: System, user_id: str) -> Counter[str]:
    """Audit records of ``user_id`` by Stripe event id."""
    return Counter(r.stripe_event_id for r in system.audit(user_id) if r.stripe_event_id)


def held_events(system: System) -> list[dict[str, Any]]:
    """Every event the emulator holds, oldest first, as raw JSON from GET /v1/events."""
    page = urllib.request.Request(  # noqa: S310 - the emulator on loopback
        f"{system.emulator.base_url}/v1/events?limit=100",
        headers={"Authorization": f"Bearer {EMULATOR_KEY}"},
    )
    with urllib.request.urlopen(page, timeout=10) as response:  # noqa: S310
        events: list[dict[str, Any]] = json.loads(response.read())["data"]
    assert len(events) < 100
    return sorted(events, key=lambda e: (e["created"], e["id"]))


def test_service_outage_answers_503_then_redelivery_applies_each_event_once(
    tmp_path: Path,
) -> None:
    with System(tmp_path) as system:
        gateway = system.gateways[0]
        user_id = new_user()
        session_id = system.checkout(user_id)
        system.wait_deliveries_idle()  # customer.created, from CreateCheckout
        before = system.processed()
        system.stop_service()

        system.emulator.complete_checkout(session_id)
        # Stripe keeps delivering while the service is down: each attempt gets 503.
        wait_until(
            "three 503 answers",
            lambda: sum(d["status"] == 503 for d in system.emulator.deliveries()),
            lambda count: count >= 3,
            within=SYSTEM_WAIT,
        )
        assert metric(gateway, 503, "billing_unavailable") >= 3
        assert system.processed() == before

        system.start_service()
        deliveries = system.wait_deliveries_idle()
        assert system.subscription(user_id).tier == "pro"

        event_ids = {d["event_id"] for d in deliveries}
        final = {d["event_id"]: d["status"] for d in deliveries}
        assert set(final.values()) == {200}
        processed = system.processed()
        assert set(processed) == event_ids
        assert all(len(outcomes) == 1 for outcomes in processed.values())
        applied = sum(outcomes == ["applied"] for outcomes in processed.values())
        audit_before = audit_per_event(system, user_id)
        assert audit_before and max(audit_before.values()) == 1
        assert sum(audit_before.values()) <= applied

        # Stripe may deliver everything again (it does after a lost 200): nothing changes.
        for event_id in sorted(event_ids):
            [attempt] = system.emulator.deliver(event_id)
            assert attempt["status"] == 200
        assert metric(gateway, 200, "duplicate") == len(event_ids)
        assert system.processed() == processed
        assert audit_per_event(system, user_id) == audit_before


def _post_until_acknowledged(gateway: GatewayProcess, body: bytes) -> Answer:
    # A concurrent twin may hold the event's lock: the gateway answers 503 and
    # Stripe would retry, so the test retries too.
    return wait_until(
        "an answer other than 503",
        lambda: post_event(gateway, body, sign(body, SECRET)),
        lambda answer: answer.status != 503,
        within=10,
        interval=0.1,
    )


def test_duplicates_delivered_concurrently_through_two_gateways(tmp_path: Path) -> None:
    with System(tmp_path, gateways=2) as system:
        system.emulator.hold_webhooks(True)
        user_id = new_user()
        system.emulator.complete_checkout(system.checkout(user_id))
        events = held_events(system)
        assert len(events) >= 3

        rounds = 3
        answers: list[tuple[str, Answer]] = []
        lock = threading.Lock()
        for event in events:
            body = json.dumps(event).encode()
            barrier = threading.Barrier(2 * rounds)

            def deliver(
                gateway: GatewayProcess,
                body: bytes = body,
                event: Any = event,
                barrier: threading.Barrier = barrier,
            ) -> None:
                barrier.wait()
                answer = _post_until_acknowledged(gateway, body)
                with lock:
                    answers.append((event["id"], answer))

            threads = [
                threading.Thread(target=deliver, args=(gateway,))
                for gateway in system.gateways * rounds
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)

        assert len(answers) == len(events) * 2 * rounds
        assert {answer.status for _, answer in answers} == {200}
        firsts = Counter(event_id for event_id, a in answers if a.json["status"] != "duplicate")
        # Exactly one of the six deliveries of each event was acted on.
        assert firsts == Counter({event["id"]: 1 for event in events})

        processed = system.processed()
        assert set(processed) == {event["id"] for event in events}
        assert all(len(outcomes) == 1 for outcomes in processed.values())
        audit = audit_per_event(system, user_id)
        assert audit and max(audit.values()) == 1
        assert system.subscription(user_id).tier == "pro"


class _Capture(ThreadingHTTPServer):
    """A webhook endpoint that keeps every delivery (an eavesdropper's copy)."""

    def __init__(self) -> None:
        self.captured: list[tuple[bytes, str]] = []
        super().__init__(("127.0.0.1", 0), _CaptureHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/capture"


class _CaptureHandler(BaseHTTPRequestHandler):
    server: _Capture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.captured.append((body, self.headers.get("Stripe-Signature", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[_Capture]:
    server = _Capture()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_every_rejection_applies_nothing(tmp_path: Path, capture: _Capture) -> None:
    tolerance = 3
    env = {"GATEWAY_SIGNATURE_TOLERANCE_SECONDS": str(tolerance)}
    with System(tmp_path, gateway_env=env) as system:
        gateway = system.gateways[0]
        system.emulator.add_webhook(capture.url, [SECRET])
        system.emulator.hold_webhooks(True)
        user_id = new_user()
        system.emulator.complete_checkout(system.checkout(user_id))
        events = held_events(system)

        for event in events:
            body = json.dumps(event).encode()
            tampered = json.dumps({**event, "type": "customer.subscription.deleted"}).encode()
            oversized = json.dumps({**event, "padding": "x" * 1_100_000}).encode()
            forged = [
                (body, None, 400, "missing_signature"),
                (body, "t=1,v1=00", 400, "invalid_signature"),
                (body, sign(body, "whsec_attacker"), 400, "invalid_signature"),
                (tampered, sign(body, SECRET), 400, "invalid_signature"),
                (
                    body,
                    sign(body, SECRET, int(time.time()) - 600),
                    400,
                    "timestamp_outside_tolerance",
                ),
                (oversized, sign(oversized, SECRET), 413, "body_too_large"),
                (body[:-1], sign(body[:-1], SECRET), 400, "malformed_json"),
            ]
            for payload, signature, status, error in forged:
                answer = post_event(gateway, payload, signature)
                assert (answer.status, answer.json) == (status, {"error": error}), error

        assert system.processed() == {}
        assert system.subscription(user_id).status == pb.SUBSCRIPTION_STATUS_NONE

        # The genuine deliveries, once released, apply; an eavesdropper captures them.
        system.emulator.hold_webhooks(False)
        for event in events:
            for attempt in system.emulator.deliver(event["id"]):
                assert attempt["status"] == 200
        assert system.subscription(user_id).tier == "pro"
        processed = system.processed()
        assert set(processed) == {event["id"] for event in events}
        audit = audit_per_event(system, user_id)
        assert len(capture.captured) == len(events)

        # The eavesdropper replays once the captured signatures are stale.
        newest = max(signed_at(signature) for _, signature in capture.captured)
        wait_until_stale(gateway, newest, SECRET)
        for body, signature in capture.captured:
            answer = post_event(gateway, body, signature)
            assert (answer.status, answer.json) == (400, {"error": "timestamp_outside_tolerance"})
        assert system.processed() == processed
        assert audit_per_event(system, user_id) == audit
