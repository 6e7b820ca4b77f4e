"""Pure translation between OpenAI's API shapes and Gemini REST (no I/O, no framework types).

Modules: ``chat`` (request entry point) built from ``messages``, ``parts``, ``tools`` and ``generation``;
``response`` (whole answers) and ``stream`` (chunks) built on ``candidates`` and ``usage``; ``embeddings``;
``models``; ``errors``; ``sse``; ``ids`` and ``families`` (tool-call ids, model names).
"""
