"""The Gemini wire, pure: error bodies, candidates, stream framing, model names, secret scrubbing."""
