"""Page sizes and page tokens of the List RPCs (billing_service/paging.py)."""

from __future__ import annotations

import pytest

from billing_service import paging
from billing_service.errors import InvalidArgument


def test_page_tokens_round_trip() -> None:
    assert paging.decode_page_token("audit:", paging.encode_page_token("audit:", 42), 1) == (42,)
    token = paging.encode_page_token("invoice:", 1_700_000_000, 7)
    assert paging.decode_page_token("invoice:", token, 2) == (1_700_000_000, 7)
    assert paging.decode_page_token("audit:", "", 1) is None


@pytest.mark.parametrize(
    ("prefix", "parts", "token"),
    [
        ("audit:", 1, "%%%"),
        ("audit:", 1, "bm9wZQ"),  # "nope"
        ("audit:", 1, paging.encode_page_token("audit:", 42)[:-2] + "!!"),
        ("invoice:", 2, "x"),
        ("invoice:", 2, "aW52b2ljZTox"),  # "invoice:1": one number short
        ("invoice:", 2, "aW52b2ljZTotMTox"),  # "invoice:-1:1"
        ("invoice:", 2, "YXVkaXQ6MQ"),  # "audit:1": another listing's token
        ("audit:", 1, paging.encode_page_token("audit:", 1 << 63)),  # past 64 bits
        ("audit:", 1, paging.encode_page_token("audit:", 0)),  # no row has id 0
    ],
)
def test_a_foreign_page_token_is_invalid_naming_it(prefix: str, parts: int, token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode_page_token(prefix, token, parts)
    assert caught.value.field == "page_token"


def test_page_sizes() -> None:
    assert paging.page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert paging.page_size(paging.MAX_PAGE_SIZE) == paging.MAX_PAGE_SIZE
    for bad_size in (-1, paging.MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidArgument) as caught:
            paging.page_size(bad_size)
        assert caught.value.field == "page_size"
