"""Fetches http(s) images named in chat messages, so that Gemini gets the bytes inline.

Why fetch rather than pass ``fileData``: Gemini's ``fileData.fileUri`` takes Files API and YouTube URIs and
only some public https URLs; fetching works for any public URL. Every fetch goes through
:class:`app.net.SafeFetcher` (public addresses only, capped, no internal detail in errors); ``fetcher=None``
means the operator turned client URL fetching off (``FETCH_CLIENT_URLS=false``).
"""

from __future__ import annotations

import asyncio
import base64

from app.net import NotFetchable, SafeFetcher
from app.net.fetch import describe
from app.protocols.openai_chat.errors import RequestError

PARAM = "image_url.url"


async def fetch_media(fetcher: SafeFetcher | None, urls: list[str],
                      param: str = PARAM) -> dict[str, tuple[str, str]]:
    """``{url: (mime_type, base64 data)}`` for every URL; a URL that cannot be fetched is a 400 naming
    ``param`` (the field as the caller's protocol calls it)."""
    if fetcher is None:
        raise RequestError("this gateway does not fetch media URLs (FETCH_CLIENT_URLS=false); send the media "
                           "inline (a data: URL or base64)", param)
    unique = list(dict.fromkeys(urls))
    results = await asyncio.gather(*(_fetch(fetcher, u, param) for u in unique))
    return dict(zip(unique, results, strict=True))


async def _fetch(fetcher: SafeFetcher, url: str, param: str) -> tuple[str, str]:
    try:
        fetched = await fetcher.fetch(url)
    except NotFetchable as exc:
        field = param.split(".")[0]
        raise RequestError(f"{field} {url[:200]!r} {describe(exc, fetcher.limits)}", param) from None
    return fetched.content_type, base64.b64encode(fetched.data).decode("ascii")
