"""A RIFF/WAVE header around raw little-endian PCM, and the duration of a WAV file.

Gemini TTS answers ``audio/L16;codec=pcm;rate=24000``: headerless 16-bit mono PCM. Players need the 44-byte
canonical header saying so (sample rate, channels, bits), with the data size filled in.
"""

from __future__ import annotations

import re
import struct

DEFAULT_RATE = 24_000
_RATE = re.compile(r"rate=(\d+)")


def pcm_rate(mime_type: str) -> int:
    """The sample rate a Gemini ``audio/L16`` mime type names (24 kHz when it names none)."""
    match = _RATE.search(mime_type or "")
    return int(match.group(1)) if match else DEFAULT_RATE


def pcm_to_wav(pcm: bytes, rate: int = DEFAULT_RATE, channels: int = 1, bits: int = 16) -> bytes:
    """The canonical 44-byte header, then ``pcm`` unchanged."""
    block = channels * bits // 8
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, channels, rate,
                         rate * block, block, bits, b"data", len(pcm))
    return header + pcm


def wav_duration(data: bytes) -> float | None:
    """Seconds of audio in a PCM WAV file, or None when ``data`` is not one (walks the chunks: ``LIST`` and
    other chunks may sit between ``fmt `` and ``data``)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, pos)
        if chunk == b"fmt " and size >= 16:
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif chunk == b"data":
            size = min(size, len(data) - pos - 8)
            return size / byte_rate if byte_rate else None
        pos += 8 + size + (size & 1)
    return None
