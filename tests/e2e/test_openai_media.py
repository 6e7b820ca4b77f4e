"""OpenAI's media routes through the real server and the openai SDK, against the fake's image and TTS models."""

from __future__ import annotations

import base64
import io
import json
import struct

import openai
import pytest

from tests.fake_gemini.media import png, tone
from tests.support.gateway import TOKEN


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=20)


def calls(fake, suffix: str = ":generateContent") -> list[dict]:
    return [r for r in fake.requests() if r["path"].endswith(suffix)]


def wav_file(seconds: float) -> bytes:
    pcm = tone(seconds)
    return (struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, 24000, 48000, 2,
                        16, b"data", len(pcm)) + pcm)


def test_image_generation_maps_openai_name_size_and_n(gateway, fake):
    resp = client(gateway).images.generate(model="gpt-image-1", prompt="a red fox", n=2, size="1536x1024")
    assert len(resp.data) == 2
    raw = base64.b64decode(resp.data[0].b64_json)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert resp.usage.output_tokens == 2 * 1290
    sent = calls(fake)
    assert len(sent) == 2 and sent[0]["path"].endswith("/models/gemini-2.5-flash-image:generateContent")
    config = sent[0]["body"]["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "3:2"}
    assert "IMAGE" in config["responseModalities"]


def test_image_url_format_is_a_data_url_and_gemini_model_used_as_named(gateway, fake):
    resp = client(gateway).images.generate(model="gemini-3-pro-image", prompt="a cat", response_format="url")
    assert resp.data[0].url.startswith("data:image/png;base64,")
    assert calls(fake)[0]["path"].endswith("/models/gemini-3-pro-image:generateContent")


def test_image_bad_size_names_the_field(gateway, fake):
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).images.generate(model="dall-e-3", prompt="x", size="huge")  # type: ignore[arg-type]
    assert info.value.body["param"] == "size"
    assert calls(fake) == []


def test_image_edit_sends_the_input_image(gateway, fake):
    source = png(4, 4, (1, 2, 3))
    resp = client(gateway).images.edit(model="gpt-image-1", image=("in.png", io.BytesIO(source), "image/png"),
                                       prompt="make it blue")
    assert base64.b64decode(resp.data[0].b64_json).startswith(b"\x89PNG")
    parts = calls(fake)[0]["body"]["contents"][0]["parts"]
    assert parts[0]["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(source).decode()}
    assert parts[-1] == {"text": "make it blue"}


def test_speech_wav_has_a_correct_header(gateway, fake):
    resp = client(gateway).audio.speech.create(model="tts-1", voice="alloy", input="hello there",
                                               response_format="wav")
    audio = resp.read()
    riff, size, wave, fmt, _, pcm_format, channels, rate, byte_rate, block, bits, data, data_size = \
        struct.unpack_from("<4sI4s4sIHHIIHH4sI", audio)
    assert (riff, wave, fmt, data) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert (pcm_format, channels, rate, bits, block, byte_rate) == (1, 1, 24000, 16, 2, 48000)
    assert data_size == len(audio) - 44 and size == len(audio) - 8 and data_size > 0
    sent = calls(fake)[0]
    assert sent["path"].endswith("/models/gemini-2.5-flash-preview-tts:generateContent")
    config = sent["body"]["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    assert config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"


def test_speech_pcm_is_raw_and_gemini_voice_accepted(gateway, fake):
    resp = client(gateway).audio.speech.create(model="gpt-4o-mini-tts", voice="puck", input="hi",  # type: ignore[arg-type]
                                               response_format="pcm", speed=0.5)
    audio = resp.read()
    assert not audio.startswith(b"RIFF") and len(audio) % 2 == 0 and audio
    body = calls(fake)[0]["body"]
    assert body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    assert body["contents"][0]["parts"][0]["text"] == "speak very slowly: hi"


def test_speech_mp3_is_refused_naming_the_field(gateway, fake):
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="mp3")
    assert info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).audio.speech.create(model="tts-1", voice="nobody", input="hi")  # type: ignore[arg-type]
    assert info.value.body["param"] == "voice"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_transcription_formats(gateway, fake, fmt):
    audio = wav_file(0.5)
    result = client(gateway).audio.transcriptions.create(model="whisper-1", file=("clip.wav", audio, "audio/wav"),
                                                         response_format=fmt, language="en", prompt="Gemini")
    text = result if isinstance(result, str) else result.text
    assert "[inlineData:audio/wav]" in text  # the fake echoes what it was sent
    sent = calls(fake)[0]
    assert sent["path"].endswith("/models/gemini-2.5-flash:generateContent")
    parts = sent["body"]["contents"][0]["parts"]
    assert "language 'en'" in parts[0]["text"] and "Gemini" in parts[0]["text"]
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == audio
    assert "generationConfig" not in sent["body"]


def test_transcription_verbose_json_has_the_model_segments(gateway, fake):
    segments = {"language": "en", "segments": [{"start": 0.0, "end": 0.3, "text": "Hello"},
                                                {"start": 0.3, "end": 0.5, "text": "world."}]}
    fake.enqueue({"body": {"candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(segments)}]},
                                           "finishReason": "STOP", "index": 0}],
                           "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 20,
                                             "totalTokenCount": 50}}})
    result = client(gateway).audio.transcriptions.create(model="gpt-4o-transcribe",
                                                         file=("clip.wav", wav_file(0.5), "audio/wav"),
                                                         response_format="verbose_json")
    assert result.text == "Hello world."
    assert result.language == "en" and result.duration == pytest.approx(0.5)
    assert [(s.start, s.end, s.text) for s in result.segments] == [(0.0, 0.3, "Hello"), (0.3, 0.5, "world.")]
    config = calls(fake)[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "segments" in config["responseJsonSchema"]["properties"]


def test_models_list_shows_what_media_names_map_to(gateway, fake):
    models = {m.id: m for m in client(gateway).models.list().data}
    assert "gemini-2.5-flash-image" in models and "gemini-2.5-flash-preview-tts" in models
    assert models["gpt-image-1"].display_name == "gpt-image-1 -> gemini-2.5-flash-image (/v1/images/*)"
    assert models["whisper-1"].display_name.startswith("whisper-1 -> gemini-2.5-flash ")


def test_transcription_without_file_names_the_field(gateway, fake):
    import requests
    resp = requests.post(gateway.v1 + "/audio/transcriptions", headers=gateway.headers(),
                         files={"model": (None, "whisper-1")}, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "file"


def test_media_routes_need_a_token(gateway, fake):
    bad = openai.OpenAI(base_url=gateway.v1, api_key="wrong", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(model="gpt-image-1", prompt="x")


def test_media_calls_count_in_the_usage_history(fake, tmp_path):
    import requests

    from tests.support.gateway import ADMIN_TOKEN, start_gateway
    with start_gateway(fake.base_url, api_keys=["ok-media-usage"], data_dir=str(tmp_path / "d")) as gw:
        client(gw).images.generate(model="gpt-image-1", prompt="a small boat")
        rows = requests.get(gw.url + "/admin/api/usage", params={"model": "gemini-2.5-flash-image"},
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10).json()["usage"]
        assert len(rows) == 1 and rows[0]["requests"] == 1 and rows[0]["successes"] == 1
        assert rows[0]["output_tokens"] == 1290 and rows[0]["input_tokens"] > 0
