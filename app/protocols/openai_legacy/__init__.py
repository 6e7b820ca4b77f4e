"""OpenAI legacy ``/v1/completions`` (prompt in, text out): pure translation to and from Gemini."""
