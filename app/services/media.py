"""Fetches http(s) images named in chat messages, so that Gemini gets the bytes inline.

Why fetch rather than pass ``fileData``: Gemini's ``fileData.fileUri`` takes Files API and YouTube URIs and
only some public https URLs; fetching works for any URL the gateway can reach. The download is capped in size
and time so that one message cannot exhaust memory or hold a request.
"""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from app.protocols.openai_chat.errors import RequestError


async def fetch_media(session: aiohttp.ClientSession, urls: list[str], *, max_bytes: int,
                      timeout: float) -> dict[str, tuple[str, str]]:
    """``{url: (mime_type, base64 data)}`` for every URL; a URL that cannot be fetched is a 400."""
    unique = list(dict.fromkeys(urls))
    results = await asyncio.gather(*(_fetch(session, u, max_bytes, timeout) for u in unique))
    return dict(zip(unique, results, strict=True))


async def _fetch(session: aiohttp.ClientSession, url: str, max_bytes: int,
                 timeout: float) -> tuple[str, str]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise RequestError(f"could not fetch image_url {url!r}: HTTP {resp.status}", "image_url.url")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise RequestError(f"image_url {url!r} is larger than {max_bytes} bytes", "image_url.url")
            data = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                data += chunk
                if len(data) > max_bytes:
                    raise RequestError(f"image_url {url!r} is larger than {max_bytes} bytes", "image_url.url")
            mime = (resp.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()
            return mime, base64.b64encode(bytes(data)).decode("ascii")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise RequestError(f"could not fetch image_url {url!r}: {type(exc).__name__}", "image_url.url") from None
