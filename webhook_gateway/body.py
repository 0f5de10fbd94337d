"""Reading a delivery's body: size and time limits, Content-Encoding, and clients that hang up.

aiohttp's own decompression is turned off (``auto_decompress=False`` in
cli.py), because a body that claims gzip but is not would fail deep inside the
server's payload reader, where no handler can answer it. Here it is a 400.
Stripe sends plain JSON; gzip and deflate are accepted for proxies that add
them, inflated to at most ``max_bytes`` (a small bomb cannot grow past it).
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web

# zlib window bits: gzip header, zlib header, or raw deflate (some clients send that).
_GZIP = 16 + zlib.MAX_WBITS
_DEFLATE = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class BodyRefused(Exception):
    """The body cannot be used; answer ``status`` with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The client hung up before its body arrived: not our error, nobody to answer."""


def _inflate(raw: bytes, wbits: int, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(raw, max_bytes + 1)
    if len(out) > max_bytes:
        raise BodyRefused(413, "body_too_large")
    if not inflater.eof or inflater.unused_data:
        raise zlib.error("truncated or trailing data")
    return out


def decode(raw: bytes, encoding: str, max_bytes: int) -> bytes:
    """The body under ``Content-Encoding: encoding``; BodyRefused(400/413) when unusable."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(raw, _GZIP, max_bytes)
        if encoding == "deflate":
            try:
                return _inflate(raw, _DEFLATE, max_bytes)
            except zlib.error:
                return _inflate(raw, _RAW_DEFLATE, max_bytes)
    except zlib.error:
        raise BodyRefused(400, "bad_content_encoding") from None
    raise BodyRefused(400, "unsupported_content_encoding")


async def read_body(request: web.Request, max_bytes: int, seconds: float) -> bytes:
    """The decoded body, within ``seconds`` and ``max_bytes`` bytes.

    BodyRefused for 400 (bad encoding or framing), 408 (too slow), 413 (too
    large); ClientGone when the client disconnected mid-body.
    """
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except TimeoutError:
        raise BodyRefused(408, "body_timeout") from None
    except web.HTTPRequestEntityTooLarge:
        raise BodyRefused(413, "body_too_large") from None
    except ConnectionResetError:
        raise ClientGone from None
    except web.RequestPayloadError:
        # Broken chunked framing and the like: the client's request, not our fault.
        raise BodyRefused(400, "malformed_body") from None
    return decode(raw, request.headers.get("Content-Encoding", ""), max_bytes)
