"""A fake of the Gemini REST API (v1beta, also v1) for tests and benchmarks: a real HTTP server on loopback.

It answers with Google's wire shapes (taken from ``tests/fixtures/gemini/``) and is scriptable per API key.
Start it with :func:`tests.fake_gemini.process.start_fake` (subprocess; ``.url``, ``.base_url``, control
helpers) or run ``python -m tests.fake_gemini --host 127.0.0.1 --port 0`` (prints ``LISTENING <port>``).

Endpoints
    ``GET /v1beta/models?pageSize=&pageToken=`` (the recorded 50-model page + ``text-embedding-004``; default
    page size 50, so page 1 equals the recording), ``GET /v1beta/models/{m}``, ``GET /v1beta/tunedModels``,
    ``POST /v1beta/models/{m}:generateContent | :streamGenerateContent[?alt=sse] | :countTokens |
    :embedContent | :batchEmbedContents``. Auth: ``x-goog-api-key`` or ``?key=``; no key -> 403; any
    ``Authorization: Bearer`` -> 401. Unknown model, or a model without the method -> Google's JSON 404;
    unrouted paths and made-up methods -> Google's HTML 404.

Projects (``projects.py``, ``resources.py``)
    Every key belongs to a Google Cloud project: the key itself unless ``POST /_control/project`` ``{"key",
    "project"}`` says otherwise. ``POST /upload/v1beta/files`` (resumable: start -> ``x-goog-upload-url``;
    upload / finalize by ``upload_id``), ``GET/DELETE /v1beta/files[/{id}]``, ``cachedContents`` create, get,
    list, patch, delete, ``models/{m}:batchGenerateContent|asyncBatchEmbedContent`` and ``batches`` get
    (pending -> running -> succeeded as it is polled), list, ``:cancel``, delete. Resources belong to the
    creating key's project; naming another project's file, cache or batch (also ``fileData.fileUri`` and
    ``cachedContent`` in generate bodies) gets Google's 403.

Key conventions (by prefix; a control override wins; any other key is ``ok``)
    ``ok*`` ok · ``invalid*`` 400 API_KEY_INVALID · ``denied*`` 403 PERMISSION_DENIED/SERVICE_DISABLED ·
    ``rpm*`` 429 per-minute (RetryInfo from the fixture, "58s", or ``retry_delay``) · ``rpd*`` 429 per-day ·
    ``unavail*`` 503 · ``internal*`` 500 · ``slow*`` ok after ``delay`` seconds (default 2.0) ·
    ``midstream*`` streams one or two text chunks, then ``{"error": 503}`` as the last event/array element ·
    ``truncated*`` streams all but the last chunk with no finishReason, ends cleanly and closes the
    connection (``abort=True``: drops the socket mid-body instead). Non-stream calls on midstream/truncated
    keys answer ok. ``invalid``/``denied`` apply to every route; ``rpm``/``rpd``/``unavail``/``internal`` only
    to model calls (models.list/get stay a quota-free probe). Pre-stream errors on the JSON-array stream
    are wrapped in ``[...]``; on ``alt=sse`` they are plain JSON with ``content-type: text/event-stream``.

Default answer (behaviour ok)
    ``"echo: " + <text parts of the last user turn>`` (parts joined by newlines; media show as
    ``[inlineData:<mime>]``/``[fileData:<uri>]``), STOP, usage in words (promptTokenCount = words of contents
    +
    systemInstruction, the same number countTokens returns). ``maxOutputTokens`` below the answer's word
    count truncates with MAX_TOKENS; ``candidateCount`` n gives n candidates (index i > 0 adds `` #i``).
    Tools with functionDeclarations (mode not NONE) and a last user turn without functionResponse ->
    a functionCall of the first (or first allowed) function, args = a placeholder per required property;
    Gemini 3 models sign it (``thoughtSignature``) and sign text answers too. A last turn with
    functionResponse parts -> ``"tool result: " + <compact JSON of each response>``. Gemini 3 requests whose
    current-turn functionCall lost its signature -> the real 400. JSON mode (``responseMimeType``
    application/json) -> a minimal instance of ``responseJsonSchema``/``responseSchema`` (or
    ``{"echo": ...}``). Thinking on (includeThoughts, a non-zero budget or a level) -> thoughtsTokenCount;
    includeThoughts also returns a ``thought: true`` part ``"thinking about: ..."`` first.

Magic prompts (anywhere in the last user turn's text)
    ``[[safety]]`` finishReason SAFETY with ``content: {}`` (the stream sends some text first) ·
    ``[[block]]`` promptFeedback.blockReason SAFETY and no candidates · ``[[max_tokens_no_parts]]`` MAX_TOKENS
    with content ``{"role": "model"}`` · ``[[malformed]]`` MALFORMED_FUNCTION_CALL + finishMessage, no
    content · ``[[code]]`` executableCode + codeExecutionResult parts, then text · ``[[long]]`` 400 extra
    words (a stream of ~135 chunks) · ``[[no_tools]]`` text even with tools in AUTO mode · ``[[parallel]]``
    calls every declared function in one turn · ``[[echo_request]]`` answers with the compact JSON of the
    request body · ``[[args:{"cmd": "echo hi"}]]`` uses that JSON object as the function call's args ·
    ``[[call:Read]]`` calls the declared function of that name (when declared) instead of the first.

Streaming
    Same answer split into chunks of a few words (``--words-per-chunk``, default 3): new parts only,
    cumulative usageMetadata on every chunk, finishReason only on the last. Function calls arrive whole;
    Gemini 2.5/3 then send a final ``{"text": ""}`` + STOP chunk, Gemini 1.x/2.0 put STOP on the call chunk
    (and omit ``index``). SSE events are ``data: <json>\\r\\n\\r\\n``; the JSON array is
    ``[{...}\\n,\\r\\n{...}\\n]``. Each chunk is its own write; ``--chunk-delay`` (or a key's ``chunk_delay``)
    spaces them out.

Control API (JSON, no auth)
    ``POST /_control/script`` ``{"key", "behaviour", "delay"?, "retry_delay"?, "times"?, "chunk_delay"?,
    "abort"?}`` (``key: "*"`` applies to every key without its own script; ``times`` = acts on N requests
    then reverts to the convention; ``ok`` clears an override, or makes an error-prefixed key answer ok;
    ``--retry-delay`` sets the default for rpm keys) · ``POST /_control/enqueue`` ``{"responses": [{"status",
    "body"} | {"stream": [chunk, ...]} | {"fixture": "native/...", "interaction"?}]}`` answered in order by
    the next generate/stream calls on ok keys (a body streams as one chunk; a stream to a non-stream call is
    merged; raw ``.sse``/``.txt`` fixtures replay byte for byte in their own framing) ·
    ``GET /_control/requests[?key=]`` · ``GET /_control/stats`` · ``POST /_control/reset``.
"""
