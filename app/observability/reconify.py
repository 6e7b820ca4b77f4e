"""One :class:`Interaction` as Reconify's REST payload, format ``gemini``.

Reconify's documented REST body (reconify.com/docs/gemini/restapi) is a copy of the JSON sent to Gemini and the
JSON Gemini answered, wrapped with the app's keys, millisecond timestamps and optional user and session. A pure
function, so that a recorded event is a complete test and the JSON-lines exporter can write the very same
record (without the keys).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from app.observability.events import Interaction
from app.observability.redact import redact_request, redact_response

FORMAT = "gemini"
VERSION = "2.3.0"

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_SESSION_MAX = 128


def interaction_type(event: Interaction) -> Literal["chat", "generate"]:
    """``chat`` for a multi-turn conversation (several contents, or any session message), else ``generate``."""
    if event.surface == "session":
        return "chat"
    contents = event.request.get("contents")
    return "chat" if isinstance(contents, list) and len(contents) > 1 else "generate"


def sanitise_session(value: str | None) -> str | None:
    """Reconify takes an alphanumeric session id: keep only ``[A-Za-z0-9]`` (a UUID loses its dashes).

    An id with nothing alphanumeric in it is no id at all, so the payload then carries no session.
    """
    if not value:
        return None
    cleaned = _NOT_ALNUM.sub("", value)[:_SESSION_MAX]
    return cleaned or None


def bare_model(model: str) -> str:
    return model[7:] if model.startswith("models/") else model


def build_payload(event: Interaction, *, session_timeout: int, redact: bool, app_key: str | None = None,
                  api_key: str | None = None, with_keys: bool = True) -> dict[str, Any]:
    """The payload for one interaction; ``with_keys=False`` leaves out appKey/apiKey (files, logs)."""
    header: dict[str, Any] = {"format": FORMAT, "type": interaction_type(event), "version": VERSION}
    if with_keys:
        header["appKey"] = app_key
        header["apiKey"] = api_key
    payload: dict[str, Any] = {
        "reconify": header,
        "timestamps": {"request": int(event.started * 1000), "response": int(event.finished * 1000)},
    }
    session = sanitise_session(event.session_id)
    if session is not None:
        payload["session"] = session
        payload["sessionTimeout"] = session_timeout
    if event.user_id:
        payload["user"] = {"userId": event.user_id, "isAuthenticated": 1}
    request = redact_request(event.request) if redact else dict(event.request)
    request["model"] = bare_model(event.model)
    payload["request"] = request
    response = event.response
    if response is not None and redact:
        response = redact_response(response)
    payload["response"] = response
    return payload
