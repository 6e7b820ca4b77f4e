"""``POST /v1/images/generations`` and ``/v1/images/edits`` -> Gemini image models' ``generateContent``.

``size`` becomes ``imageConfig.aspectRatio`` (the nearest ratio Gemini supports) and, for large sizes,
``imageConfig.imageSize`` (by pixel count); ``n`` images are ``n`` calls (image models take one candidate).
``response_format`` ``b64_json`` (default) or ``url`` (a ``data:`` URL: the gateway stores nothing).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidRequest, UpstreamUnavailable
from app.gemini.parts import answer_text
from app.protocols.openai_media.common import inline_parts, number_field, parts_of, string_field, usage_of

#: Aspect ratios Gemini's image models accept, as (label, width/height).
RATIOS: tuple[tuple[str, float], ...] = tuple(
    (f"{w}:{h}", w / h) for w, h in ((1, 1), (2, 3), (3, 2), (3, 4), (4, 3), (4, 5), (5, 4), (9, 16), (16, 9),
                                     (21, 9)))
MAX_IMAGES = 4
FORMATS = ("b64_json", "url")


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    n: int
    aspect_ratio: str | None
    image_size: str | None
    response_format: str
    images: tuple[tuple[str, bytes], ...] = ()  # edits: (mime type, bytes) of each input image


def size_config(size: str | None) -> tuple[str | None, str | None]:
    """``"1536x1024"`` -> (``"3:2"``, None); ``"auto"``/absent -> (None, None); 2K/4K sizes set imageSize."""
    if size is None or size == "auto":
        return None, None
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        width = height = 0
    if width <= 0 or height <= 0 or width > 8192 or height > 8192:
        raise InvalidRequest(f"size {size[:40]!r} must be 'auto' or WIDTHxHEIGHT, e.g. 1024x1024",
                             param="size")
    ratio = width / height
    label = min(RATIOS, key=lambda r: abs(r[1] - ratio))[0]
    # Gemini's 1K is about 1 MP (1024x1024, 1376x768), 2K about 4 MP, 4K about 16 MP: pick by pixel count.
    pixels = width * height
    return label, ("4K" if pixels > 6_000_000 else "2K" if pixels > 2_500_000 else None)


def parse_image_request(form: dict[str, Any], images: tuple[tuple[str, bytes], ...] = ()) -> ImageRequest:
    """The request's fields (JSON body or multipart form, already read); 400s name the field."""
    prompt = string_field(form, "prompt", required=True)
    n = number_field(form, "n", 1, MAX_IMAGES)
    if n is not None and n != int(n):
        raise InvalidRequest("n must be an integer", param="n")
    aspect, image_size = size_config(string_field(form, "size"))
    response_format = string_field(form, "response_format") or "b64_json"
    if response_format not in FORMATS:
        raise InvalidRequest(f"response_format must be one of {', '.join(FORMATS)}", param="response_format")
    if form.get("mask") is not None:
        raise InvalidRequest("mask is not supported: Gemini edits from the prompt alone", param="mask")
    return ImageRequest(prompt or "", int(n or 1), aspect, image_size, response_format, images)


def image_body(req: ImageRequest) -> dict[str, Any]:
    """The GenerateContentRequest: input images first (edits), then the prompt."""
    parts: list[dict[str, Any]] = [
        {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}}
        for mime, data in req.images]
    parts.append({"text": req.prompt})
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    image_config = {k: v for k, v in (("aspectRatio", req.aspect_ratio), ("imageSize", req.image_size)) if v}
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def images_response(req: ImageRequest, answers: list[dict[str, Any]], created: int) -> dict[str, Any]:
    """OpenAI's ImagesResponse from the ``n`` Gemini answers; usage summed."""
    data: list[dict[str, Any]] = []
    tokens_in = tokens_out = image_tokens = 0
    mime = "image/png"
    for answer in answers:
        parts = parts_of(answer)
        found = inline_parts(parts, "image/")
        if not found:
            raise UpstreamUnavailable("the image model answered without an image")
        prompt, output = usage_of(answer)
        tokens_in, tokens_out = tokens_in + prompt, tokens_out + output
        image_tokens += sum(int(d.get("tokenCount") or 0) for d in
                            (answer.get("usageMetadata") or {}).get("promptTokensDetails") or []
                            if isinstance(d, dict) and d.get("modality") == "IMAGE")
        note = answer_text(parts).strip()
        for image in found:
            mime = image.mime or mime
            b64 = image.data
            entry: dict[str, Any] = ({"url": f"data:{mime};base64,{b64}"} if req.response_format == "url"
                                     else {"b64_json": b64})
            if note:
                entry["revised_prompt"] = note
            data.append(entry)
    out_format = mime.removeprefix("image/")
    return {"created": created, "data": data, "output_format": out_format,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out,
                      "input_tokens_details": {"text_tokens": tokens_in - image_tokens,
                                               "image_tokens": image_tokens}}}
