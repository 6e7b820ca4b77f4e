"""The Anthropic Messages API (``/v1/messages``), translated directly to and from Gemini. Pure, no I/O.

Modules: :mod:`.request` (Messages body -> GenerateContentRequest), :mod:`.content` (content blocks -> parts),
:mod:`.tools`, :mod:`.signatures` (how Gemini thought signatures ride in Anthropic blocks), :mod:`.stream`
(Gemini chunks -> Anthropic SSE events), :mod:`.response` (events -> one Message), :mod:`.errors`,
:mod:`.models` (claude-* names -> Gemini models).
"""
