"""OpenAI's media routes (images, speech, transcription) translated to and from Gemini ``generateContent``.

Pure: no I/O. Gemini now does all three through ``generateContent``: image output from the ``*-image`` models,
speech from the TTS models (24 kHz 16-bit mono PCM in ``inlineData``), transcription from any audio-capable
model. Each module is one route's request -> Gemini body and Gemini response -> OpenAI body.
"""

from app.protocols.openai_media.models import MediaModels, resolve_model
from app.protocols.openai_media.voices import VOICES, gemini_voice
from app.protocols.openai_media.wav import pcm_to_wav, wav_duration

__all__ = ["VOICES", "MediaModels", "gemini_voice", "pcm_to_wav", "resolve_model", "wav_duration"]
