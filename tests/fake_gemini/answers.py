"""Deterministic answers to GenerateContentRequests, as whole responses or as stream chunks (pure, no I/O).

The default answer reveals what the fake received (``"echo: <last user turn>"``) so a test through the gateway
can assert that history, tools, schemas and settings were carried. One :class:`Answer` is built per request
and rendered either as one GenerateContentResponse or as the chunks of a stream, so both paths always agree on
text and final usage. The magic prompts are listed in the package docstring (``tests/fake_gemini``).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from . import fixtures, schema

MAGIC_SAFETY = "[[safety]]"
MAGIC_BLOCK = "[[block]]"
MAGIC_MAX_TOKENS_NO_PARTS = "[[max_tokens_no_parts]]"
MAGIC_MALFORMED = "[[malformed]]"
MAGIC_CODE = "[[code]]"
MAGIC_LONG = "[[long]]"
MAGIC_NO_TOOLS = "[[no_tools]]"
MAGIC_PARALLEL = "[[parallel]]"
MAGIC_ECHO_REQUEST = "[[echo_request]]"
_MAGIC_ARGS_RE = re.compile(r"\[\[args:(\{.*?\})\]\]")
_MAGIC_CALL_RE = re.compile(r"\[\[call:([A-Za-z0-9_.:-]+)\]\]")

SAFETY_FIXTURE = "native/generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml"
MAX_TOKENS_NO_PARTS_FIXTURE = (
    "native/generate__finish-MAX_TOKENS-no-parts-thinking-ate-budget__gemini-2.5-pro__pydantic-ai.yaml"
)

DEFAULT_WORDS_PER_CHUNK = 3
LONG_ANSWER_WORDS = 400
DEFAULT_EMBEDDING_DIMS = 3072
FUNCTION_CALL_FINISH_MESSAGE = "Model generated function call(s)."

_WORD_RE = re.compile(r"\s*\S+")
_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])")


# --------------------------------------------------------------------------------------------- request access


@lru_cache(maxsize=256)
def snake(name: str) -> str:
    """``generationConfig`` -> ``generation_config``: Gemini accepts either spelling on input."""
    return _SNAKE_RE.sub("_", name).lower()


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Read a request field by its lowerCamelCase name, falling back to the snake_case spelling."""
    if not isinstance(obj, dict):
        return default
    if name in obj:
        return obj[name]
    return obj.get(snake(name), default)


def is_gemini3(model: str) -> bool:
    """Gemini 3 signs function calls and text, and insists on signatures being replayed."""
    return model.startswith("gemini-3")


def is_legacy_stream_model(model: str) -> bool:
    """Gemini 1.x/2.0 streams put a call and STOP in one chunk and omit ``index``."""
    return model.startswith(("gemini-2.0", "gemini-1"))


def count_words(text: str) -> int:
    """The fake's tokenizer: whitespace-separated words (cheap, deterministic, easy to assert)."""
    return len(text.split())


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def part_tokens(part: dict[str, Any]) -> int:
    """Tokens a part is worth, for both prompt counting and ``candidatesTokenCount``."""
    if "text" in part:
        return count_words(str(part["text"]))
    call = get(part, "functionCall")
    if isinstance(call, dict):
        return 1 + count_words(_compact(call.get("args", {})))
    response = get(part, "functionResponse")
    if isinstance(response, dict):
        return 1 + count_words(_compact(response.get("response", {})))
    code = get(part, "executableCode")
    if isinstance(code, dict):
        return count_words(str(code.get("code", "")))
    result = get(part, "codeExecutionResult")
    if isinstance(result, dict):
        return count_words(str(result.get("output", "")))
    return 1  # media and anything else: one token, enough to be visible


def content_tokens(contents: Any) -> int:
    """Words in every part of a list of Content objects (or of one Content)."""
    if isinstance(contents, dict):
        contents = [contents]
    total = 0
    for content in contents or []:
        for part in get(content, "parts") or []:
            if isinstance(part, dict):
                total += part_tokens(part)
    return total


def prompt_tokens(request: dict[str, Any]) -> int:
    """promptTokenCount: words in ``contents`` plus the system instruction."""
    return content_tokens(get(request, "contents")) + content_tokens(get(request, "systemInstruction"))


def _is_user(content: dict[str, Any]) -> bool:
    return content.get("role") in (None, "", "user", "function")


def last_user_content(request: dict[str, Any]) -> dict[str, Any] | None:
    """The last content sent by the user side (role ``user`` or omitted)."""
    for content in reversed(get(request, "contents") or []):
        if isinstance(content, dict) and _is_user(content):
            return content
    return None


def user_text(content: dict[str, Any] | None) -> str:
    """The turn's text parts (thoughts excluded) and markers for media, joined by newlines."""
    if not content:
        return ""
    pieces: list[str] = []
    for part in get(content, "parts") or []:
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if "text" in part:
            pieces.append(str(part["text"]))
            continue
        inline = get(part, "inlineData")
        if isinstance(inline, dict):
            pieces.append(f"[inlineData:{get(inline, 'mimeType', '')}]")
            continue
        file_data = get(part, "fileData")
        if isinstance(file_data, dict):
            pieces.append(f"[fileData:{get(file_data, 'fileUri', '')}]")
    return "\n".join(pieces)


def function_responses(content: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The functionResponse objects of a turn."""
    if not content:
        return []
    out = []
    for part in get(content, "parts") or []:
        response = get(part, "functionResponse") if isinstance(part, dict) else None
        if isinstance(response, dict):
            out.append(response)
    return out


def function_declarations(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every declared function across ``tools[]``, in order."""
    out: list[dict[str, Any]] = []
    for tool in get(request, "tools") or []:
        for decl in get(tool, "functionDeclarations") or []:
            if isinstance(decl, dict) and decl.get("name"):
                out.append(decl)
    return out


def calling_config(request: dict[str, Any]) -> tuple[str, list[str]]:
    """``(mode, allowedFunctionNames)`` from ``toolConfig.functionCallingConfig`` (mode default AUTO)."""
    config = get(get(request, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = str(get(config, "mode") or "AUTO").upper()
    return mode, list(get(config, "allowedFunctionNames") or [])


# ----------------------------------------------------------------------------------------------- answer model


@dataclass
class Candidate:
    """One candidate to render; ``stream_prefix`` parts are only streamed (text sent before a block)."""

    parts: list[dict[str, Any]]
    finish_reason: str = "STOP"
    finish_message: str | None = None
    finish_message_in_stream: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    empty_content: dict[str, Any] | None = None  # content when there are no parts; None omits "content"
    stream_prefix: list[dict[str, Any]] = field(default_factory=list)
    has_index: bool = True


@dataclass
class Answer:
    """Everything needed to render a reply either way; built once per request."""

    model: str
    candidates: list[Candidate]
    prompt_tokens: int
    thoughts_tokens: int = 0
    prompt_feedback: dict[str, Any] | None = None
    response_id: str = ""

    def __post_init__(self) -> None:
        if not self.response_id:
            self.response_id = new_response_id()


def new_response_id() -> str:
    """A random id shaped like Google's (23 URL-safe characters)."""
    return base64.urlsafe_b64encode(os.urandom(18)).decode("ascii")[:23]


def thought_signature(model: str, seed: str) -> str:
    """A deterministic, valid base64 signature, so replays can be compared byte for byte."""
    digest = hashlib.sha256(f"{model}\0{seed}".encode()).digest()
    return base64.b64encode(b"fake-thought-signature:" + digest[:24]).decode("ascii")


# ------------------------------------------------------------------------------------------- building answers


def build_answer(model: str, request: dict[str, Any]) -> Answer:
    """Decide the reply to a (validated) GenerateContentRequest."""
    config = get(request, "generationConfig") or {}
    last_user = last_user_content(request)
    text_in = user_text(last_user)
    n_candidates = max(1, min(8, int(get(config, "candidateCount") or 1)))
    prompt = prompt_tokens(request)

    if MAGIC_BLOCK in text_in:
        return Answer(model, [], prompt, prompt_feedback=_block_feedback())
    if MAGIC_SAFETY in text_in:
        return Answer(model, [_safety_candidate(text_in)], prompt)
    if MAGIC_MAX_TOKENS_NO_PARTS in text_in:
        return _max_tokens_no_parts(model, prompt, config)
    if MAGIC_MALFORMED in text_in:
        decls = function_declarations(request)
        name = decls[0]["name"] if decls else "lookup"
        candidate = Candidate(
            [],
            "MALFORMED_FUNCTION_CALL",
            finish_message=f"Malformed function call: print(default_api.{name}(query=x))",
        )
        return Answer(model, [candidate], prompt)

    thoughts_text = _thoughts_text(config, text_in)
    thoughts = count_words(thoughts_text) if thoughts_text else 0
    include_thoughts = bool(get(get(config, "thinkingConfig") or {}, "includeThoughts"))
    lead: list[dict[str, Any]] = (
        [{"text": thoughts_text, "thought": True}] if thoughts_text and include_thoughts else []
    )

    contents = get(request, "contents") or []
    last = contents[-1] if contents and isinstance(contents[-1], dict) else None
    user_last = last is not None and _is_user(last)
    responses = function_responses(last) if user_last else []
    calls = _function_calls(model, request, text_in) if user_last and not responses else None
    candidates: list[Candidate] = []
    for index in range(n_candidates):
        if calls:
            candidates.append(
                Candidate(
                    lead + copy.deepcopy(calls),
                    finish_message=FUNCTION_CALL_FINISH_MESSAGE if is_gemini3(model) else None,
                    finish_message_in_stream=False,
                )
            )
            continue
        if responses:
            body = "tool result: " + "\n".join(_compact(get(r, "response", {})) for r in responses)
        else:
            body = _text_body(request, config, text_in)
        if index:
            body = f"{body} #{index}"
        candidates.append(_text_candidate(model, lead, body, config, text_in))
    return Answer(model, candidates, prompt, thoughts_tokens=thoughts)


def _text_body(request: dict[str, Any], config: dict[str, Any], text_in: str) -> str:
    """The visible answer text before truncation: echo, JSON instance, enum value or magic variants."""
    if MAGIC_ECHO_REQUEST in text_in:
        return _compact(request)
    mime = str(get(config, "responseMimeType") or "").lower()
    response_schema = (
        get(config, "responseJsonSchema")
        or config.get("_responseJsonSchema")
        or get(config, "responseSchema")
    )
    if mime == "application/json":
        if response_schema:
            return json.dumps(schema.instance(response_schema, required_only=False), ensure_ascii=False)
        return json.dumps({"echo": text_in}, ensure_ascii=False)
    if mime == "text/x.enum" and isinstance(response_schema, dict) and response_schema.get("enum"):
        return str(response_schema["enum"][0])
    body = "echo: " + text_in
    if MAGIC_LONG in text_in:
        body += "".join(f" word{i:04d}" for i in range(LONG_ANSWER_WORDS))
    return body


def _text_candidate(
    model: str, lead: list[dict[str, Any]], body: str, config: dict[str, Any], text_in: str
) -> Candidate:
    finish = "STOP"
    limit = get(config, "maxOutputTokens")
    if isinstance(limit, int) and limit > 0 and count_words(body) > limit:
        body = "".join(_WORD_RE.findall(body)[:limit]).rstrip()
        finish = "MAX_TOKENS"
    parts: list[dict[str, Any]] = list(lead)
    if MAGIC_CODE in text_in:
        parts.append({"executableCode": {"language": "PYTHON", "code": f"print({text_in!r})"}})
        parts.append({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": text_in + "\n"}})
    text_part: dict[str, Any] = {"text": body}
    if is_gemini3(model):
        text_part["thoughtSignature"] = thought_signature(model, body)
    parts.append(text_part)
    return Candidate(parts, finish)


def _thoughts_text(config: dict[str, Any], text_in: str) -> str:
    """Thinking is on when asked for thoughts, a non-zero budget or a level; its summary is deterministic."""
    thinking = get(config, "thinkingConfig") or {}
    budget = get(thinking, "thinkingBudget")
    on = bool(get(thinking, "includeThoughts")) or get(thinking, "thinkingLevel") is not None
    on = on or (budget is not None and budget != 0)
    if not on:
        return ""
    return "thinking about: " + " ".join(text_in.split()[:20])


def _function_calls(model: str, request: dict[str, Any], text_in: str) -> list[dict[str, Any]] | None:
    """The functionCall parts to answer with, or None when the model should answer in text."""
    decls = function_declarations(request)
    mode, allowed = calling_config(request)
    if not decls or mode == "NONE" or (MAGIC_NO_TOOLS in text_in and mode != "ANY"):
        return None
    if allowed:
        decls = [d for d in decls if d["name"] in allowed] or decls
    named = scripted_call(text_in)
    decls = [d for d in decls if d["name"] == named] or decls
    chosen = decls if MAGIC_PARALLEL in text_in else decls[:1]
    parts: list[dict[str, Any]] = []
    for decl in chosen:
        params = get(decl, "parametersJsonSchema") or get(decl, "parameters")
        args = schema.instance(params, required_only=True) if isinstance(params, dict) else {}
        args = scripted_args(text_in) or args
        parts.append({"functionCall": {"name": decl["name"], "args": args if isinstance(args, dict) else {}}})
    if is_gemini3(model) and parts:
        parts[0]["thoughtSignature"] = thought_signature(model, parts[0]["functionCall"]["name"])
    return parts


def scripted_args(text_in: str) -> dict[str, Any] | None:
    """Arguments a test asked for with ``[[args:{...}]]`` (so a real agent runs a real command), else None."""
    match = _MAGIC_ARGS_RE.search(text_in)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def scripted_call(text_in: str) -> str | None:
    """The function a test named with ``[[call:Read]]`` (an agent declares many tools, in no useful order)."""
    match = _MAGIC_CALL_RE.search(text_in)
    return match.group(1) if match else None


@lru_cache(maxsize=1)
def _safety_fixture_candidate() -> dict[str, Any]:
    return fixtures.load(SAFETY_FIXTURE).body["candidates"][0]


def _safety_candidate(text_in: str) -> Candidate:
    """SAFETY with ``content: {}`` as recorded; a stream first delivers some text, then the block."""
    recorded = copy.deepcopy(_safety_fixture_candidate())
    extra = {k: v for k, v in recorded.items() if k not in ("content", "finishReason", "index")}
    return Candidate(
        [],
        str(recorded["finishReason"]),
        extra=extra,
        empty_content=recorded.get("content", {}),
        stream_prefix=[{"text": "echo: " + text_in}],
        has_index="index" in recorded,
    )


def _block_feedback() -> dict[str, Any]:
    ratings = copy.deepcopy(_safety_fixture_candidate().get("safetyRatings", []))
    return {"blockReason": "SAFETY", "safetyRatings": ratings}


def _max_tokens_no_parts(model: str, prompt: int, config: dict[str, Any]) -> Answer:
    recorded = fixtures.load(MAX_TOKENS_NO_PARTS_FIXTURE).body
    candidate = recorded["candidates"][0]
    limit = get(config, "maxOutputTokens")
    thoughts = (
        limit
        if isinstance(limit, int) and limit > 0
        else int(recorded["usageMetadata"]["thoughtsTokenCount"])
    )
    return Answer(
        model,
        [Candidate([], str(candidate["finishReason"]), empty_content=dict(candidate["content"]))],
        prompt,
        thoughts_tokens=thoughts,
    )


# -------------------------------------------------------------------------------------------------- rendering


def usage(prompt: int, candidates: int, thoughts: int) -> dict[str, Any]:
    """usageMetadata in Google's key order; zero candidates/thoughts counts are omitted, as Google does."""
    body: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        body["candidatesTokenCount"] = candidates
    body["totalTokenCount"] = prompt + candidates + thoughts
    body["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        body["thoughtsTokenCount"] = thoughts
    return body


def _visible_tokens(parts: list[dict[str, Any]]) -> int:
    return sum(part_tokens(p) for p in parts if not p.get("thought"))


def to_response(answer: Answer) -> dict[str, Any]:
    """The whole GenerateContentResponse of a non-stream call."""
    body: dict[str, Any] = {}
    visible = 0
    if answer.candidates:
        rendered = []
        for index, cand in enumerate(answer.candidates):
            visible += _visible_tokens(cand.parts)
            entry: dict[str, Any] = {}
            if cand.parts:
                entry["content"] = {"parts": cand.parts, "role": "model"}
            elif cand.empty_content is not None:
                entry["content"] = cand.empty_content
            entry["finishReason"] = cand.finish_reason
            entry.update(cand.extra)
            if cand.has_index:
                entry["index"] = index
            if cand.finish_message:
                entry["finishMessage"] = cand.finish_message
            rendered.append(entry)
        body["candidates"] = rendered
    if answer.prompt_feedback is not None:
        body["promptFeedback"] = answer.prompt_feedback
    body["usageMetadata"] = usage(answer.prompt_tokens, visible, answer.thoughts_tokens)
    body["modelVersion"] = answer.model
    body["responseId"] = answer.response_id
    return body


def _split_text(text: str, words_per_chunk: int) -> list[str]:
    words = _WORD_RE.findall(text)
    if not words:
        return [text]
    tail = text[len("".join(words)) :]
    groups = ["".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]
    groups[-1] += tail
    return groups


def stream_pieces(
    parts: list[dict[str, Any]], model: str, words_per_chunk: int
) -> list[list[dict[str, Any]]]:
    """How a candidate's parts spread over chunks: a few words per text chunk, calls whole, signatures last.

    Parallel calls share one chunk; a signed text part streams unsigned and its signature arrives on a
    trailing empty-text part (Gemini 3 streams, vercel-ai chunks fixture).
    """
    pieces: list[list[dict[str, Any]]] = []
    previous_was_call = False
    for part in parts:
        if "functionCall" in part:
            if previous_was_call:
                pieces[-1].append(part)
            else:
                pieces.append([part])
            previous_was_call = True
            continue
        previous_was_call = False
        if "text" in part and not part.get("thought"):
            for group in _split_text(str(part["text"]), words_per_chunk):
                pieces.append([{"text": group}])
            if "thoughtSignature" in part:
                pieces.append([{"text": "", "thoughtSignature": part["thoughtSignature"]}])
            continue
        pieces.append([part])
    if parts and "functionCall" in parts[-1] and not is_legacy_stream_model(model):
        pieces.append([{"text": ""}])
    return pieces


def to_chunks(answer: Answer, words_per_chunk: int = DEFAULT_WORDS_PER_CHUNK) -> list[dict[str, Any]]:
    """The chunks of a stream: new parts only, cumulative usage, finishReason on the last."""
    meta = {"modelVersion": answer.model, "responseId": answer.response_id}
    if not answer.candidates:
        return [
            {
                "promptFeedback": answer.prompt_feedback,
                "usageMetadata": usage(answer.prompt_tokens, 0, answer.thoughts_tokens),
                **meta,
            }
        ]
    legacy = is_legacy_stream_model(answer.model)
    per_candidate: list[list[list[dict[str, Any]] | None]] = []
    for cand in answer.candidates:
        pieces: list[list[dict[str, Any]] | None] = list(
            stream_pieces(cand.stream_prefix + cand.parts, answer.model, words_per_chunk)
        )
        if not cand.parts:
            pieces.append(None)  # the final chunk carries the empty/absent content
        per_candidate.append(pieces)
    total = max(len(p) for p in per_candidate)
    visible = 0
    chunks: list[dict[str, Any]] = []
    for step in range(total):
        rendered = []
        for index, (cand, pieces) in enumerate(zip(answer.candidates, per_candidate, strict=True)):
            if step >= len(pieces):
                continue
            piece = pieces[step]
            entry: dict[str, Any] = {}
            if piece is not None:
                entry["content"] = {"parts": piece, "role": "model"}
                visible += _visible_tokens(piece)
            elif cand.empty_content is not None:
                entry["content"] = cand.empty_content
            if step == len(pieces) - 1:
                entry["finishReason"] = cand.finish_reason
                entry.update(cand.extra)
                if cand.finish_message and cand.finish_message_in_stream:
                    entry["finishMessage"] = cand.finish_message
            if cand.has_index and not legacy:
                entry["index"] = index
            rendered.append(entry)
        chunks.append(
            {
                "candidates": rendered,
                "usageMetadata": usage(answer.prompt_tokens, visible, answer.thoughts_tokens),
                **meta,
            }
        )
    return chunks


def strip_finish(chunk: dict[str, Any]) -> dict[str, Any]:
    """A copy of a chunk without finishReason/finishMessage, for streams that break off early."""
    out = copy.deepcopy(chunk)
    for cand in out.get("candidates", []):
        cand.pop("finishReason", None)
        cand.pop("finishMessage", None)
    return out


def merge_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold stream chunks into the single response a non-stream call would have returned."""
    merged: dict[str, Any] = {}
    candidates: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for key in ("modelVersion", "responseId"):
            if key in chunk:
                merged.setdefault(key, chunk[key])
        if "promptFeedback" in chunk:
            merged["promptFeedback"] = chunk["promptFeedback"]
        if "usageMetadata" in chunk:
            merged["usageMetadata"] = chunk["usageMetadata"]
        for cand in chunk.get("candidates", []):
            index = int(cand.get("index", 0))
            target = candidates.setdefault(index, {})
            for key, value in cand.items():
                if key == "content":
                    content = target.setdefault("content", {})
                    for ckey, cvalue in value.items():
                        if ckey == "parts":
                            content.setdefault("parts", []).extend(copy.deepcopy(cvalue))
                        else:
                            content[ckey] = cvalue
                else:
                    target[key] = value
    for cand in candidates.values():
        parts = cand.get("content", {}).get("parts")
        if parts:
            cand["content"]["parts"] = _merge_text_parts(parts)
    body: dict[str, Any] = {}
    if candidates:
        body["candidates"] = [candidates[i] for i in sorted(candidates)]
    body.update(merged)
    return body


def _merge_text_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join consecutive text parts of the same kind; a trailing empty signed part lends its signature."""
    out: list[dict[str, Any]] = []
    for part in parts:
        previous = out[-1] if out else None
        if (
            previous is not None
            and set(part) <= {"text", "thoughtSignature", "thought"}
            and set(previous) <= {"text", "thoughtSignature", "thought"}
            and "text" in part
            and "text" in previous
            and bool(part.get("thought")) == bool(previous.get("thought"))
            and "thoughtSignature" not in previous
        ):
            previous["text"] += part["text"]
            if "thoughtSignature" in part:
                previous["thoughtSignature"] = part["thoughtSignature"]
            continue
        out.append(dict(part))
    return out


# ----------------------------------------------------------------------------------------- tokens, embeddings


def count_tokens_response(request: dict[str, Any]) -> dict[str, Any]:
    """countTokens: the same count generateContent reports as promptTokenCount for the same request."""
    inner = get(request, "generateContentRequest")
    total = prompt_tokens(inner) if isinstance(inner, dict) else content_tokens(get(request, "contents"))
    return {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}


def content_text(content: Any) -> str:
    """All text of an embed request's Content, joined by newlines."""
    return "\n".join(
        str(p["text"]) for p in (get(content, "parts") or []) if isinstance(p, dict) and "text" in p
    )


@lru_cache(maxsize=2048)
def _unit_vector(text: str) -> tuple[float, ...]:
    rng = random.Random(hashlib.sha256(text.encode("utf-8")).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(DEFAULT_EMBEDDING_DIMS)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(round(v / norm, 8) for v in values)


def embedding_values(text: str, dims: int | None) -> list[float]:
    """A deterministic unit vector for ``text``; smaller sizes truncate, not re-normalised."""
    size = dims if isinstance(dims, int) and dims > 0 else DEFAULT_EMBEDDING_DIMS
    base = _unit_vector(text)
    if size <= len(base):
        return list(base[:size])
    repeats = -(-size // len(base))
    return list((base * repeats)[:size])
