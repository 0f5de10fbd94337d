"""HTTP-level hostility over raw sockets: hang-ups, bad encodings, huge headers, slow bodies.

Each answer is JSON with an error name, never the client's bytes; a hang-up
is counted under its own reason, never as the ``internal_error`` the alert
watches.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator

import pytest

from devtools.waiting import wait_until
from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import (
    WEBHOOK_PATH,
    Answer,
    GatewayProcess,
    new_event,
    post_event,
    request,
    sign,
)


def metric(gateway: GatewayProcess, status: int | str, reason: str) -> float:
    """One billing_gateway_responses_total sample (0 when absent)."""
    text = request(gateway.host, gateway.port, "GET", "/metrics").body.decode()
    prefix = f'billing_gateway_responses_total{{reason="{reason}",status="{status}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def wait_for_metric(gateway: GatewayProcess, status: int, reason: str, at_least: float) -> None:
    """Poll /metrics until the sample reaches ``at_least``; raise on timeout."""
    wait_until(
        f"responses_total{{{status}, {reason}}} >= {at_least}",
        lambda: metric(gateway, status, reason),
        lambda value: value >= at_least,
        within=10,
    )


def raw_exchange(gateway: GatewayProcess, data: bytes, *, close_after_send: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; everything the gateway sends back until it closes."""
    with socket.create_connection((gateway.host, gateway.port), timeout=20) as conn:
        conn.sendall(data)
        if close_after_send:
            return b""
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def parse_answer(raw: bytes) -> Answer:
    """The status and body of one raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), body)


def head_of(body_length: int, extra: str = "") -> bytes:
    """Request head of a webhook POST announcing ``body_length`` bytes."""
    return (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_length}\r\n{extra}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def slow_gateway(standin: StandIn, gateway_db: str) -> Iterator[GatewayProcess]:
    """A gateway that gives bodies half a second."""
    env = gateway_env(standin.target, gateway_db, GATEWAY_BODY_TIMEOUT_SECONDS="0.5")
    with GatewayProcess(env) as process:
        yield process


def test_a_client_hanging_up_mid_body_is_not_an_internal_error(gateway: GatewayProcess) -> None:
    before = metric(gateway, 499, "client_disconnected")
    raw_exchange(gateway, head_of(1000) + b'{"id": "evt_', close_after_send=True)
    wait_for_metric(gateway, 499, "client_disconnected", before + 1)
    assert metric(gateway, 503, "internal_error") == 0
    assert "failed with a bug" not in gateway.log_text()
    assert "Traceback" not in gateway.log_text()


def test_a_body_that_is_not_gzip_is_400(gateway: GatewayProcess) -> None:
    body = json.dumps(new_event()).encode()
    answer = post_event(gateway, body, sign(body, NEW_SECRET), {"Content-Encoding": "gzip"})
    assert (answer.status, answer.json) == (400, {"error": "bad_content_encoding"})
    assert metric(gateway, 503, "internal_error") == 0
    assert "Traceback" not in gateway.log_text()


def test_a_gzip_body_is_read(gateway: GatewayProcess) -> None:
    body = json.dumps(new_event()).encode()
    compressed = gzip.compress(body)
    answer = post_event(gateway, compressed, sign(body, NEW_SECRET), {"Content-Encoding": "gzip"})
    assert (answer.status, answer.json["status"]) == (200, "applied"), answer


def test_a_gzip_bomb_stops_at_the_body_limit(gateway: GatewayProcess) -> None:
    compressed = gzip.compress(b" " * (4 << 20))
    answer = post_event(gateway, compressed, "t=1,v1=x", {"Content-Encoding": "gzip"})
    assert (answer.status, answer.json) == (413, {"error": "body_too_large"})


def test_an_unknown_encoding_is_400(gateway: GatewayProcess) -> None:
    answer = post_event(gateway, b"{}", "t=1,v1=x", {"Content-Encoding": "br"})
    assert (answer.status, answer.json) == (400, {"error": "unsupported_content_encoding"})


@pytest.mark.parametrize(
    "head",
    [
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: g\r\nStripe-Signature: t=1,v1={'ab' * 4200}\r\n"
        "Content-Length: 2\r\n\r\n{}",
        f"POST {WEBHOOK_PATH}?{'q' * 9000} HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n\r\n{{}}",
        "NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["signature_over_8190_bytes", "request_line_over_8190_bytes", "garbage"],
)
def test_errors_aiohttp_raises_itself_answer_json_without_echo(
    gateway: GatewayProcess, head: str
) -> None:
    answer = parse_answer(raw_exchange(gateway, head.encode()))
    assert answer.status == 400, answer
    assert answer.json["error"] == "bad_http_request", answer
    assert b"abab" not in answer.body and b"qqqq" not in answer.body
    assert "abab" not in gateway.log_text()


def test_a_body_slower_than_the_timeout_is_408_and_the_connection_closed(
    slow_gateway: GatewayProcess,
) -> None:
    # The gateway answers and closes while the client still owes 990 bytes:
    # raw_exchange returns only because the gateway closed the connection.
    answer = parse_answer(raw_exchange(slow_gateway, head_of(1000) + b'{"id": "ev'))
    assert (answer.status, answer.json) == (408, {"error": "body_timeout"})
    assert metric(slow_gateway, 408, "body_timeout") == 1
    assert "Traceback" not in slow_gateway.log_text()
