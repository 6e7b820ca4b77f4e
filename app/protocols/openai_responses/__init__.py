"""The OpenAI Responses API adapter: pure translation to and from Gemini, no I/O (docs/architecture.md, Surfaces).

``request`` (body -> Gemini call), ``output`` (Gemini answer -> output items), ``envelope`` (the Response
object), ``stream`` (Gemini chunks -> Responses SSE events), ``compaction`` and ``completions`` (legacy).
"""
