"""OpenAI voice names -> Gemini prebuilt voices (chosen by described character; README lists the table).

Gemini's own voice names are accepted too, in any case. Anything else is a 400 naming ``voice``.
"""

from __future__ import annotations

from app.protocols.openai_chat.errors import RequestError

#: OpenAI voice -> Gemini prebuilt voice.
VOICES: dict[str, str] = {
    "alloy": "Kore",        # neutral, firm
    "ash": "Orus",          # firm, lower
    "ballad": "Algieba",    # smooth
    "coral": "Aoede",       # warm, breezy
    "echo": "Puck",         # upbeat
    "fable": "Sadaltager",  # storyteller, knowledgeable
    "onyx": "Charon",       # deep, informative
    "nova": "Leda",         # youthful
    "sage": "Achernar",     # soft
    "shimmer": "Zephyr",    # bright
    "verse": "Enceladus",   # breathy, expressive
    "marin": "Despina",     # smooth
    "cedar": "Iapetus",     # clear
}

#: Gemini's prebuilt TTS voices.
GEMINI_VOICES: tuple[str, ...] = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus",
    "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar",
    "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia",
    "Sadaltager", "Sulafat",
)
_GEMINI = {v.lower(): v for v in GEMINI_VOICES}


def gemini_voice(value: object) -> str:
    """The Gemini voice for an OpenAI or Gemini voice name (OpenAI's ``{"id": ...}`` form accepted)."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise RequestError("voice is required: an OpenAI voice (alloy, ash, ...) or a Gemini voice (Kore, ...)",
                           "voice")
    name = value.strip().lower()
    if name in VOICES:
        return VOICES[name]
    if name in _GEMINI:
        return _GEMINI[name]
    raise RequestError(f"voice {value[:50]!r} is unknown; use an OpenAI voice ({', '.join(VOICES)}) or a "
                       "Gemini prebuilt voice (Kore, Puck, ...)", "voice")
