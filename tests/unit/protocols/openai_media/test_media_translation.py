"""The media translators, pure: WAV header, size mapping, voices, model names, response shapes."""

from __future__ import annotations

import base64
import io
import struct
import wave

import pytest

from app.errors import InvalidRequest, UpstreamUnavailable
from app.protocols.openai_media import MediaModels, gemini_voice, pcm_to_wav, resolve_model, wav_duration
from app.protocols.openai_media.images import image_body, images_response, parse_image_request, size_config
from app.protocols.openai_media.speech import parse_speech_request, speech_audio, speech_body
from app.protocols.openai_media.wav import pcm_rate

MODELS = MediaModels("img-default", "tts-default", "stt-default")


def test_wav_header_is_read_back_by_the_wave_module() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    with wave.open(io.BytesIO(pcm_to_wav(pcm, 24000))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 24000, 4)
        assert wav.readframes(4) == pcm
    assert wav_duration(pcm_to_wav(b"\0\0" * 12000)) == pytest.approx(0.5)
    assert wav_duration(b"not a wav") is None
    assert pcm_rate("audio/L16;codec=pcm;rate=16000") == 16000 and pcm_rate("audio/L16") == 24000


@pytest.mark.parametrize(("size", "expected"), [
    ("1024x1024", ("1:1", None)), ("1536x1024", ("3:2", None)), ("1024x1536", ("2:3", None)),
    ("1792x1024", ("16:9", None)), ("1024x1792", ("9:16", None)), ("2048x2048", ("1:1", "2K")),
    ("4096x2304", ("16:9", "4K")), ("auto", (None, None)), (None, (None, None))])
def test_size_maps_to_aspect_ratio_and_image_size(size, expected) -> None:
    assert size_config(size) == expected


@pytest.mark.parametrize("form", [{"prompt": ""}, {"prompt": "x", "n": 9}, {"prompt": "x", "size": "0x5"},
                                  {"prompt": "x", "response_format": "png"}, {"prompt": "x", "mask": "m"}])
def test_bad_image_fields_name_the_field(form) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_image_request(form)
    assert info.value.param == ({"prompt", "n", "size", "response_format", "mask"} & form.keys()
                                if len(form) == 1 else (set(form) - {"prompt"})).pop()


def test_image_body_and_response() -> None:
    req = parse_image_request({"prompt": "fox", "n": "2", "size": "1024x1536", "response_format": "url"},
                              (("image/png", b"PNGDATA"),))
    body = image_body(req)
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "UE5HREFUQQ=="}},
                                            {"text": "fox"}]
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3"}
    answer = {"candidates": [{"content": {"parts": [{"text": "a fox"}, {"inlineData": {
        "mimeType": "image/jpeg", "data": "QUJD"}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 1290,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 42},
                                                  {"modality": "IMAGE", "tokenCount": 258}]}}
    out = images_response(req, [answer, answer], 7)
    assert out["data"][0] == {"url": "data:image/jpeg;base64,QUJD", "revised_prompt": "a fox"}
    assert out["usage"]["input_tokens"] == 600 and out["usage"]["output_tokens"] == 2580
    assert out["usage"]["input_tokens_details"] == {"text_tokens": 84, "image_tokens": 516}
    assert out["output_format"] == "jpeg"


def test_refused_or_imageless_answers() -> None:
    req = parse_image_request({"prompt": "x"})
    with pytest.raises(InvalidRequest) as info:
        images_response(req, [{"promptFeedback": {"blockReason": "SAFETY"}}], 0)
    assert info.value.code == "content_policy_violation"
    with pytest.raises(InvalidRequest):
        images_response(req, [{"candidates": [{"finishReason": "IMAGE_SAFETY"}]}], 0)
    with pytest.raises(UpstreamUnavailable):
        images_response(req, [{"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": "STOP"}]}],
                        0)


def test_voices_and_models() -> None:
    assert gemini_voice("alloy") == "Kore" and gemini_voice("KORE") == "Kore" and gemini_voice({"id": "nova"}) == "Leda"
    with pytest.raises(InvalidRequest):
        gemini_voice("robot")
    assert resolve_model("dall-e-3", "image", MODELS) == "img-default"
    assert resolve_model("tts-1-hd", "tts", MODELS) == "tts-default"
    assert resolve_model("whisper-1", "transcribe", MODELS) == "stt-default"
    assert resolve_model(None, "tts", MODELS) == "tts-default"
    assert resolve_model("models/gemini-3-pro-image", "image", MODELS) == "gemini-3-pro-image"
    with pytest.raises(InvalidRequest) as info:
        resolve_model("../x", "image", MODELS)
    assert info.value.param == "model"


def test_speech_round_trip() -> None:
    req = parse_speech_request({"input": "hello", "voice": "onyx", "instructions": "Cheerfully.", "speed": 1.5})
    assert req.response_format == "wav"  # OpenAI's default mp3 has no encoder here: wav instead
    body = speech_body(req)
    assert body["contents"][0]["parts"][0]["text"] == "Cheerfully; speak quickly: hello"
    assert body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Charon"
    pcm = b"\x01\x00\x02\x00"
    answer = {"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "audio/L16;codec=pcm;rate=24000", "data": base64.b64encode(pcm).decode()}}]}}]}
    audio, content_type = speech_audio(req, answer)
    assert content_type == "audio/wav" and audio[44:] == pcm and audio[:4] == b"RIFF"
    with pytest.raises(InvalidRequest) as info:
        parse_speech_request({"input": "x", "voice": "alloy", "response_format": "opus"})
    assert info.value.param == "response_format"


def test_verbose_transcription_without_json_still_gives_the_text() -> None:
    from app.protocols.openai_media.transcription import parse_transcription_request, transcription_response
    req = parse_transcription_request({"response_format": "verbose_json"}, b"RIFFxxxx", "audio/wav")
    answer = {"candidates": [{"content": {"parts": [{"text": "just words"}]}, "finishReason": "STOP"}]}
    body, content_type = transcription_response(req, answer)
    assert isinstance(body, dict) and body["text"] == "just words" and "segments" not in body
    assert content_type == "application/json" and body["language"] == "unknown"
    answer["candidates"][0]["content"]["parts"][0]["text"] = (
        '{"segments": [{"start": 2, "end": 1, "text": " b "}, {"start": "x", "end": 1, "text": "bad"}]}')
    body, _ = transcription_response(req, answer)
    assert body["segments"] == [{"id": 0, "seek": 0, "start": 2.0, "end": 2.0, "text": " b "}]
    assert body["text"] == "b"
