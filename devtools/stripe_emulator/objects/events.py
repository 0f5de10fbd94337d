"""Events: a snapshot of an object at the moment it changed."""

from __future__ import annotations

import copy

from .fixtures import API_VERSION, JSON, Fixtures, new_id


def new_event(
    fx: Fixtures,
    *,
    event_type: str,
    created: int,
    obj: JSON,
    previous_attributes: JSON | None,
    pending_webhooks: int,
    request_id: str | None,
    idempotency_key: str | None,
) -> JSON:
    """An event whose ``data.object`` is a snapshot of ``obj``."""
    event = fx.template("event")
    data: JSON = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(previous_attributes)
    event.update(
        id=new_id("evt_"),
        api_version=API_VERSION,
        created=created,
        data=data,
        livemode=False,
        pending_webhooks=pending_webhooks,
        request={"id": request_id, "idempotency_key": idempotency_key},
        type=event_type,
    )
    return event
