"""OpenAI chat request -> Gemini GenerateContentRequest: every translation rule and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from app.protocols.openai_chat.chat import DROPPED_FIELDS, ChatRequest, media_urls, parse_chat_request, tool_call_ids
from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.ids import mint_tool_call_id
from app.protocols.openai_chat.messages import SKIP_SIGNATURE

USER = {"role": "user", "content": "hi"}


def parse(model: str = "gemini-2.5-flash", messages: list | None = None, **fields: Any) -> ChatRequest:
    return parse_chat_request({"model": model, "messages": messages or [USER], **fields})


def body(**fields: Any) -> dict:
    return parse(**fields).body


def refused(payload: Any, **kwargs: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_chat_request(payload, **kwargs)
    assert caught.value.status == 400
    assert str(caught.value)
    return caught.value


def refused_field(**fields: Any) -> RequestError:
    return refused({"model": "gemini-2.5-flash", "messages": [USER], **fields})


# -- envelope -----------------------------------------------------------------------------------------------


def test_minimal_request() -> None:
    req = parse()
    assert req.model == "gemini-2.5-flash"
    assert req.requested_model == "gemini-2.5-flash"
    assert req.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert (req.stream, req.include_usage, req.n, req.user) == (False, False, 1, None)


def test_models_prefix_is_stripped_but_echoed() -> None:
    req = parse(model="models/gemini-2.5-pro")
    assert req.model == "gemini-2.5-pro"
    assert req.requested_model == "models/gemini-2.5-pro"


@pytest.mark.parametrize(
    "model", [None, "", "gemini/../../x", "gemini 2.5", "models/", "a?key=1", 42, "models/a/b"]
)
def test_bad_model_names_are_refused(model: Any) -> None:
    payload = {"messages": [USER]} if model is None else {"model": model, "messages": [USER]}
    assert refused(payload).param == "model"


@pytest.mark.parametrize("payload", [None, [], "text", 3])
def test_body_must_be_an_object(payload: Any) -> None:
    assert refused(payload).param is None


@pytest.mark.parametrize("messages", [None, [], "hi", {"role": "user"}])
def test_messages_must_be_a_non_empty_array(messages: Any) -> None:
    assert refused({"model": "gemini-2.5-flash", "messages": messages}).param == "messages"


def test_stream_and_usage_options() -> None:
    req = parse(stream=True, stream_options={"include_usage": True}, user="u-1")
    assert (req.stream, req.include_usage, req.user) == (True, True, "u-1")
    assert parse(stream=False, stream_options={"include_usage": True}).include_usage is False
    assert refused_field(stream="yes").param == "stream"
    assert (
        refused_field(stream=True, stream_options={"include_usage": "y"}).param
        == "stream_options.include_usage"
    )


def test_dropped_and_unknown_fields_never_reach_gemini() -> None:
    extras: dict[str, Any] = {
        "user": "u",
        "store": True,
        "metadata": {"a": "b"},
        "service_tier": "auto",
        "prediction": {},
        "audio": {"voice": "x"},
        "logit_bias": {"1": 2},
        "parallel_tool_calls": False,
        "web_search_options": {},
        "brand_new_field": {"x": 1},
        "reasoning": {"effort": "low"},
    }
    req = parse(**extras)
    assert req.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert set(req.ignored_fields) == {"brand_new_field", "reasoning"}
    assert {"user", "store", "metadata", "logit_bias", "parallel_tool_calls", "web_search_options"} <= set(
        DROPPED_FIELDS
    )


# -- messages -----------------------------------------------------------------------------------------------


def test_system_and_developer_messages_become_system_instruction() -> None:
    b = body(
        messages=[
            {"role": "system", "content": "A"},
            {"role": "developer", "content": [{"type": "text", "text": "B"}]},
            USER,
            {"role": "system", "content": "C"},
        ]
    )
    assert b["systemInstruction"] == {"parts": [{"text": "A"}, {"text": "B"}, {"text": "C"}]}
    assert b["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_system_only_conversation_gets_a_placeholder_user_turn() -> None:
    b = body(messages=[{"role": "system", "content": "be terse"}])
    assert b["contents"] == [{"role": "user", "parts": [{"text": " "}]}]


def test_consecutive_roles_are_merged_and_turns_alternate() -> None:
    b = body(
        messages=[
            USER,
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "a1"},
            {"role": "assistant", "content": [{"type": "text", "text": "a2"}]},
            {"role": "user", "content": "q"},
        ]
    )
    assert b["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}, {"text": "again"}]},
        {"role": "model", "parts": [{"text": "a1"}, {"text": "a2"}]},
        {"role": "user", "parts": [{"text": "q"}]},
    ]


def test_empty_messages() -> None:
    b = body(
        messages=[
            USER,
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": None},
            {"role": "user", "content": ""},
        ]
    )
    # empty assistant turns vanish, so the user turns merge; an empty user message keeps a blank part
    assert b["contents"] == [{"role": "user", "parts": [{"text": "hi"}, {"text": " "}]}]
    assert (
        refused({"model": "m", "messages": [{"role": "user", "content": None}]}).param
        == "messages[0].content"
    )


def test_assistant_reasoning_content_and_refusal_parts() -> None:
    b = body(
        messages=[
            USER,
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "no"}],
                "reasoning_content": "thinking…",
            },
            USER,
        ]
    )
    assert b["contents"][1] == {"role": "model", "parts": [{"text": "no"}]}


@pytest.mark.parametrize(
    "message,param",
    [
        ({"role": "robot", "content": "x"}, "messages[1].role"),
        ({"content": "x"}, "messages[1].role"),
        ("hello", "messages[1]"),
        ({"role": "user", "content": 5}, "messages[1].content"),
        ({"role": "user", "content": [5]}, "messages[1].content[0]"),
        ({"role": "user", "content": [{"type": "text", "text": 5}]}, "messages[1].content[0].text"),
        ({"role": "user", "content": [{"type": "video", "video": {}}]}, "messages[1].content[0].type"),
        (
            {
                "role": "system",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
            },
            "messages[1].content[0].type",
        ),
        ({"role": "tool", "content": "x"}, "messages[1].tool_call_id"),
        ({"role": "tool", "tool_call_id": "nope", "content": "x"}, "messages[1].tool_call_id"),
        ({"role": "function", "content": "x"}, "messages[1].name"),
    ],
)
def test_bad_messages_name_the_field(message: Any, param: str) -> None:
    assert refused({"model": "gemini-2.5-flash", "messages": [USER, message]}).param == param


# -- tool calls and results ---------------------------------------------------------------------------------


def call(
    call_id: str | None, name: str = "get_weather", arguments: Any = '{"city": "Paris"}', **extra: Any
) -> dict:
    out: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}, **extra}
    if call_id is not None:
        out["id"] = call_id
    return out


def test_tool_round_trip_with_minted_ids_sends_no_ids() -> None:
    a, b = mint_tool_call_id(), mint_tool_call_id()
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call(a), call(b, "get_time", "")]},
        {"role": "tool", "tool_call_id": b, "content": "noon"},
        {"role": "tool", "tool_call_id": a, "content": '{"temp": 21}'},
        {"role": "user", "content": "thanks"},
    ]
    contents = body(messages=messages)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    # consecutive tool results (and the next user message) form one user turn; names recovered by id
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"text": "thanks"},
        ],
    }
    assert len(contents) == 3


def test_gemini_issued_ids_are_forwarded_on_call_and_response() -> None:
    messages = [
        USER,
        {"role": "assistant", "tool_calls": [call("function-call-123")]},
        {
            "role": "tool",
            "tool_call_id": "function-call-123",
            "content": [{"type": "text", "text": "[1, 2]"}],
        },
    ]
    contents = body(messages=messages)["contents"]
    assert contents[1]["parts"][0]["functionCall"]["id"] == "function-call-123"
    assert contents[2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "id": "function-call-123",
        "response": {"content": "[1, 2]"},
    }


def test_empty_ids_from_googles_compat_layer_still_pair() -> None:
    messages = [
        USER,
        {"role": "assistant", "tool_calls": [call("")]},
        {"role": "tool", "tool_call_id": "", "content": "x"},
    ]
    contents = body(messages=messages)["contents"]
    assert contents[1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize(
    "arguments,ok", [("{bad", False), ("[1]", False), (5, False), ("null", True), ({"city": "Rome"}, True)]
)
def test_tool_call_arguments(arguments: Any, ok: bool) -> None:
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1", arguments=arguments)]}]
    payload = {"model": "gemini-2.5-flash", "messages": messages}
    if ok:
        parse_chat_request(payload)
    else:
        assert refused(payload).param == "messages[1].tool_calls[0].function.arguments"


def test_legacy_function_call_and_function_role() -> None:
    messages = [
        USER,
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"a": 1}'}},
        {"role": "function", "name": "f", "content": "done"},
    ]
    contents = parse(
        messages=messages,
        functions=[{"name": "f", "parameters": {"type": "object"}}],
        function_call={"name": "f"},
    ).body
    assert contents["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {"a": 1}}}]
    assert contents["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"content": "done"}}}
    ]
    assert contents["tools"] == [
        {"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}
    ]
    assert contents["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}


# -- thought signatures -------------------------------------------------------------------------------------


def tool_turn(*calls: dict) -> list[dict]:
    results = [{"role": "tool", "tool_call_id": c["id"], "content": "r"} for c in calls if "id" in c]
    return [USER, {"role": "assistant", "content": None, "tool_calls": list(calls)}, *results]


def model_parts(req: ChatRequest) -> list[dict]:
    return [p for c in req.body["contents"] if c["role"] == "model" for p in c["parts"]]


def test_signature_recovered_from_the_gateway_memory() -> None:
    a, b = mint_tool_call_id(), mint_tool_call_id()
    req = parse_chat_request(
        {"model": "gemini-3-pro-preview", "messages": tool_turn(call(a), call(b))}, signatures={a: "SIG-A"}
    )
    first, second = model_parts(req)
    assert first["thoughtSignature"] == "SIG-A"
    assert "thoughtSignature" not in second  # parallel calls: only the first is signed


def test_signature_echoed_in_googles_extra_content_wins() -> None:
    a = mint_tool_call_id()
    echoed = call(a, extra_content={"google": {"thought_signature": "ECHOED"}})
    req = parse_chat_request(
        {"model": "gemini-3-flash-preview", "messages": tool_turn(echoed)}, signatures={a: "REMEMBERED"}
    )
    assert model_parts(req)[0]["thoughtSignature"] == "ECHOED"


@pytest.mark.parametrize(
    "model,skip",
    [
        ("gemini-3-pro-preview", True),
        ("gemini-3.1-flash-lite", True),
        ("gemini-flash-latest", True),
        ("gemini-pro-latest", True),
        ("gemini-2.5-flash", False),
        ("gemini-2.0-flash", False),
    ],
)
def test_unsigned_history_gets_the_skip_literal_on_gemini3_only(model: str, skip: bool) -> None:
    req = parse_chat_request(
        {
            "model": model,
            "messages": tool_turn(call("c1"), call("c2"))
            + [
                {"role": "assistant", "tool_calls": [call("c3")]},
                {"role": "tool", "tool_call_id": "c3", "content": "r"},
            ],
        }
    )
    parts = model_parts(req)
    if skip:
        assert [p.get("thoughtSignature") for p in parts] == [SKIP_SIGNATURE, None, SKIP_SIGNATURE]
    else:
        assert all("thoughtSignature" not in p for p in parts)


def test_tool_call_ids_lists_every_assistant_call() -> None:
    payload = {
        "messages": tool_turn(call("a"), call("b"))
        + [
            {"role": "assistant", "tool_calls": [call("")]},
            {"role": "assistant", "tool_calls": "junk"},
            "junk",
        ]
    }
    assert tool_call_ids(payload) == ["a", "b"]
    assert tool_call_ids(None) == [] and tool_call_ids({"messages": 3}) == []


# -- content parts ------------------------------------------------------------------------------------------


def user_parts(content: list, **kwargs: Any) -> list[dict]:
    req = parse_chat_request(
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": content}]}, **kwargs
    )
    return req.body["contents"][0]["parts"]


def test_data_url_image_becomes_inline_data() -> None:
    parts = user_parts(
        [
            {"type": "text", "text": "what is this?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
            },
        ]
    )
    assert parts == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
    ]


def test_percent_encoded_data_url_is_base64_encoded() -> None:
    assert user_parts([{"type": "image_url", "image_url": "data:image/svg+xml,%3Csvg%2F%3E"}]) == [
        {"inlineData": {"mimeType": "image/svg+xml", "data": "PHN2Zy8+"}}
    ]


@pytest.mark.parametrize("url", ["data:;base64,AAAA", "data:image/png;base64,", "ftp://x/y.png", "datafoo"])
def test_bad_image_urls(url: str) -> None:
    with pytest.raises(RequestError) as caught:
        user_parts([{"type": "image_url", "image_url": {"url": url}}])
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_web_images_use_fetched_bytes_or_file_data() -> None:
    fetched = "https://example.com/cat.webp"
    unfetched = "https://example.com/photo.JPG?size=large"
    unknown = "https://example.com/image"
    youtube = "https://www.youtube.com/watch?v=abc"
    files_api = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    content = [
        {"type": "image_url", "image_url": {"url": u}}
        for u in (fetched, unfetched, unknown, youtube, files_api)
    ]
    content.append({"type": "image_url", "image_url": {"url": fetched}})
    payload = {"messages": [{"role": "user", "content": content}]}
    assert media_urls(payload) == [
        fetched,
        unfetched,
        unknown,
    ]  # deduplicated; Gemini reads the others itself
    parts = user_parts(content, fetched_media={fetched: ("image/webp", "UklGRg==")})
    assert parts == [
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"fileUri": unfetched, "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": unknown}},
        {"fileData": {"fileUri": youtube}},
        {"fileData": {"fileUri": files_api}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
    ]


def test_media_urls_never_raises() -> None:
    assert media_urls(None) == [] and media_urls({"messages": "x"}) == []
    assert media_urls({"messages": [None, {"content": [None, {"type": "image_url", "image_url": 5}]}]}) == []


def test_audio_and_files() -> None:
    parts = user_parts(
        [
            {"type": "input_audio", "input_audio": {"data": "UklGRiQ=", "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
            },
            {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "b.pdf"}},
            {"type": "file", "file": {"file_id": "files/xyz", "filename": "notes.txt"}},
            {"type": "file", "file": {"file_id": "https://generativelanguage.googleapis.com/v1beta/files/q"}},
            {"type": "file", "file": {"file_id": "file-abc123"}},
        ]
    )
    assert parts == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRiQ="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {
            "fileData": {
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/xyz",
                "mimeType": "text/plain",
            }
        },
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/q"}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
    ]


@pytest.mark.parametrize(
    "part,param",
    [
        ({"type": "input_audio", "input_audio": {"data": "x"}}, "messages[0].content[0].input_audio.format"),
        (
            {"type": "input_audio", "input_audio": {"format": "mp3"}},
            "messages[0].content[0].input_audio.data",
        ),
        ({"type": "file", "file": {}}, "messages[0].content[0].file"),
        ({"type": "file", "file": {"file_id": "abc123"}}, "messages[0].content[0].file.file_id"),
    ],
)
def test_bad_media_parts(part: dict, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        user_parts([part])
    assert caught.value.param == param


# -- tools --------------------------------------------------------------------------------------------------


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"anyOf": [{"const": "C"}, {"const": "F"}]}},
            "required": ["city"],
            "additionalProperties": False,
            "$defs": {"x": {"type": "string"}},
        },
    },
}
NOW = {"type": "function", "function": {"name": "now"}}


def test_tools_become_function_declarations_with_json_schema() -> None:
    b = body(tools=[WEATHER, NOW], parallel_tool_calls=True)
    (tool,) = b["tools"]
    weather, now = tool["functionDeclarations"]
    assert weather == {
        "name": "get_weather",
        "description": "Weather for a city",
        "parametersJsonSchema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"anyOf": [{"const": "C"}, {"const": "F"}]}},
            "required": ["city"],
            "additionalProperties": False,
            "$defs": {"x": {"type": "string"}},
        },
    }
    assert now == {"name": "now"}
    assert "toolConfig" not in b


@pytest.mark.parametrize(
    "choice,config",
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "now"}}, {"mode": "ANY", "allowedFunctionNames": ["now"]}),
    ],
)
def test_tool_choice(choice: Any, config: dict) -> None:
    assert body(tools=[WEATHER, NOW], tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
        ({"tools": {"a": 1}}, "tools"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "parameters": "obj"}}]},
            "tools[0].function.parameters",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
    ],
)
def test_bad_tools(fields: dict, param: str) -> None:
    assert refused_field(**fields).param == param


def test_tool_choice_none_without_tools_is_harmless() -> None:
    assert "toolConfig" not in body(tool_choice="none")
    assert "toolConfig" not in body(tool_choice="auto")


def test_native_gemini_tools_pass_through() -> None:
    b = body(tools=[{"google_search": {}}, {"urlContext": {}}])
    assert b["tools"] == [{"googleSearch": {}}, {"urlContext": {}}]


def test_search_model_suffix() -> None:
    req = parse_chat_request(
        {"model": "gemini-2.5-flash-search", "messages": [USER]}, search_models={"gemini-2.5-flash"}
    )
    assert req.model == "gemini-2.5-flash"
    assert req.requested_model == "gemini-2.5-flash-search"
    assert req.body["tools"] == [{"googleSearch": {}}]
    with_functions = parse_chat_request(
        {"model": "gemini-2.5-flash-search", "messages": [USER], "tools": [NOW]},
        search_models={"gemini-2.5-flash"},
    )
    assert with_functions.body["tools"] == [{"functionDeclarations": [{"name": "now"}]}, {"googleSearch": {}}]
    not_configured = parse_chat_request(
        {"model": "gemini-2.5-pro-search", "messages": [USER]}, search_models={"gemini-2.5-flash"}
    )
    assert not_configured.model == "gemini-2.5-pro-search" and "tools" not in not_configured.body


def test_code_execution_flag() -> None:
    req = parse_chat_request({"model": "gemini-2.5-flash", "messages": [USER]}, code_execution=True)
    assert req.body["tools"] == [{"codeExecution": {}}]
    req = parse_chat_request(
        {"model": "gemini-2.5-flash", "messages": [USER], "tools": [NOW]}, code_execution=True
    )
    assert req.body["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


# -- generationConfig ---------------------------------------------------------------------------------------


def test_sampling_fields() -> None:
    config = body(
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        max_tokens=100,
        stop="END",
        n=2,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0,
        logprobs=True,
        top_logprobs=3,
    )["generationConfig"]
    assert config == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "responseLogprobs": True,
        "logprobs": 3,
    }
    assert parse(n=2).n == 2


def test_max_completion_tokens_wins_and_defaults_stay_out() -> None:
    assert body(max_tokens=10, max_completion_tokens=20)["generationConfig"] == {"maxOutputTokens": 20}
    assert "generationConfig" not in body(
        n=1, logprobs=False, top_logprobs=2, stop=[], presence_penalty=0.0, response_format={"type": "text"}
    )


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "9"}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e", "f"]}, "stop"),
        ({"stop": [1]}, "stop"),
        ({"n": 0}, "n"),
        ({"seed": 1.5}, "seed"),
        ({"presence_penalty": 5}, "presence_penalty"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": []}}},
            "response_format.json_schema.schema",
        ),
        ({"modalities": ["audio"]}, "modalities"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"user": 5}, "user"),
    ],
)
def test_bad_generation_fields_name_the_field(fields: dict, param: str) -> None:
    assert refused_field(**fields).param == param


def test_response_formats() -> None:
    assert body(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    sdk_parse_shape = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": schema, "strict": True},
    }
    assert body(response_format=sdk_parse_shape)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_modalities() -> None:
    assert body(modalities=["text", "image"])["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


@pytest.mark.parametrize(
    "model,effort,thinking",
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-flash", "minimal", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}),
        ("gemini-2.5-flash-lite", "low", {"thinkingBudget": 1024}),
        ("gemini-3-pro-preview", "none", {"thinkingLevel": "low"}),
        ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "low"}),
        ("gemini-3.1-pro-preview", "medium", {"thinkingLevel": "medium"}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "high"}),
        ("gemini-3-flash-preview", "none", {"thinkingLevel": "minimal"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal"}),
        ("gemini-3.1-flash-lite", "low", {"thinkingLevel": "low"}),
        ("gemini-flash-latest", "xhigh", {"thinkingLevel": "high"}),
        ("gemini-2.0-flash", "high", None),
    ],
)
def test_reasoning_effort_table(model: str, effort: str, thinking: dict | None) -> None:
    config = parse(model=model, reasoning_effort=effort).body.get("generationConfig", {})
    assert config.get("thinkingConfig") == thinking


def test_google_extras_in_extra_body_and_top_level() -> None:
    safety = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
    google = {
        "thinking_config": {"thinking_budget": 2048, "include_thoughts": True},
        "safety_settings": safety,
        "cached_content": "cachedContents/abc",
    }
    for b in (body(extra_body={"google": google}), body(google=google)):
        assert b["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}}
        assert b["safetySettings"] == safety
        assert b["cachedContent"] == "cachedContents/abc"
    camel = body(
        model="gemini-3-pro-preview", extra_body={"google": {"thinkingConfig": {"thinkingLevel": "HIGH"}}}
    )
    assert camel["generationConfig"] == {"thinkingConfig": {"thinkingLevel": "high"}}


def test_reasoning_effort_with_include_thoughts_combines() -> None:
    config = body(
        model="gemini-3-flash-preview",
        reasoning_effort="low",
        extra_body={"google": {"thinking_config": {"include_thoughts": True}}},
    )["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingLevel": "low", "includeThoughts": True}}


@pytest.mark.parametrize(
    "fields,param",
    [
        (
            {
                "reasoning_effort": "low",
                "extra_body": {"google": {"thinking_config": {"thinking_budget": 10}}},
            },
            "reasoning_effort",
        ),
        (
            {"reasoning_effort": "low", "google": {"thinking_config": {"thinking_level": "low"}}},
            "reasoning_effort",
        ),
        (
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": 10, "thinking_level": "low"}}}},
            "extra_body.google.thinking_config",
        ),
        (
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": "lots"}}}},
            "extra_body.google.thinking_config.thinking_budget",
        ),
        (
            {"google": {"thinking_config": {"thinking_level": "extreme"}}},
            "google.thinking_config.thinking_level",
        ),
        (
            {"google": {"thinking_config": {"include_thoughts": "yes"}}},
            "google.thinking_config.include_thoughts",
        ),
        ({"google": {"safety_settings": {"a": 1}}}, "google.safety_settings"),
        ({"google": {"cached_content": 5}}, "google.cached_content"),
        ({"google": "fast"}, "google"),
    ],
)
def test_bad_google_extras(fields: dict, param: str) -> None:
    assert refused_field(**fields).param == param
