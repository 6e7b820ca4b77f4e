"""Vertex AI express mode endpoints of the fake: ``POST /v1/publishers/google/models/{model}:{method}``.

Express mode (an API key, no project or location in the path) serves only generateContent,
streamGenerateContent and countTokens; the bodies and answers are the Gemini API's, so the fake's own
model-call handler answers them. Anything else under the express root is Google's 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import FakeGemini

EXPRESS_METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})


def add_routes(app: web.Application, fake: FakeGemini) -> None:
    async def express_call(request: web.Request) -> web.StreamResponse:
        method = request.match_info["target"].rpartition(":")[2]
        if method not in EXPRESS_METHODS:
            return await fake.not_found(request)
        return await fake.model_call(request)

    app.router.add_route("POST", "/{version:v1|v1beta1}/publishers/google/models/{target}", express_call)
