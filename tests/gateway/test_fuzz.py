"""Random bodies and headers: the gateway answers 200, 400 or 413, and never falls over."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.conftest import NEW_SECRET
from tests.gateway.support import GatewayProcess, post_event, request, sign

FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=30),
        "object": st.sampled_from(["event", "subscription", ""]),
        "type": st.text(max_size=40),
        "created": st.integers() | st.text(max_size=5),
        "data": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
)
header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=20
).filter(lambda name: name.lower() not in FRAMING_HEADERS)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
signature_kinds = st.sampled_from(["none", "random", "valid", "old", "wrong_secret"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    kind=signature_kinds,
    random_signature=header_values,
    extra=st.dictionaries(header_names, header_values, max_size=4),
)
def test_random_deliveries_never_break_the_gateway(
    gateway: GatewayProcess, body: bytes, kind: str, random_signature: str, extra: dict[str, str]
) -> None:
    extra = {k: v for k, v in extra.items() if k.lower() != "stripe-signature"}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    signature: str | None
    if kind == "none":
        signature = None
    elif kind == "random" or text is None:
        signature = random_signature
    elif kind == "valid":
        signature = sign(text, NEW_SECRET)
    elif kind == "old":
        signature = sign(text, NEW_SECRET, timestamp=int(time.time()) - 10_000)
    else:
        signature = sign(text, "whsec_fuzz")
    answer = post_event(gateway, body, signature, extra)
    assert answer.status in (200, 400, 413), answer
    assert isinstance(answer.json, dict), answer
    if answer.status == 200:
        assert kind == "valid"
        assert answer.json["status"] in {
            "applied",
            "duplicate",
            "ignored",
            "stale",
            "dead_lettered",
        }


def test_gateway_survives_the_fuzz(gateway: GatewayProcess) -> None:
    assert gateway.alive()
    assert request(gateway.host, gateway.port, "GET", "/healthz").status == 200
    assert "Traceback" not in gateway.log_text()
