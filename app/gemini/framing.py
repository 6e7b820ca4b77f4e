"""Incremental readers for Gemini's two stream framings. Pure, no I/O.

* SSE (``alt=sse``): events separated by a blank line; Gemini uses CRLF, tests and proxies may use LF. Only
  ``data:`` lines matter; Gemini sends no ``[DONE]``.
* JSON array (no ``alt``): one array written incrementally, ``[{...}\\n,\\r\\n{...}\\n]``. Elements are found
  by tracking brace depth outside strings, the same way the official SDK reads it.
"""

from __future__ import annotations


class SSEDecoder:
    """Feed raw bytes, get back the ``data:`` payload of every complete event."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A lone trailing CR may be the first half of a CRLF split across reads.
            keep_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        events: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            data = _event_data(buf[start:end])
            if data is not None:
                events.append(data)
            start = end + 2
        self._buf = buf[start:]
        return events

    def flush(self) -> list[bytes]:
        """An event left without its closing blank line when the stream ended."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        data = _event_data(rest) if rest else None
        return [data] if data is not None else []


def _event_data(block: bytes) -> bytes | None:
    if block.startswith(b"data:") and b"\n" not in block:
        return block[5:].lstrip(b" ")  # the common case: one data line
    lines = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


class JSONArrayDecoder:
    """Feed raw bytes of an incrementally written JSON array, get back each complete top-level element."""

    __slots__ = ("_buf", "_depth", "_in_str", "_escape", "_start", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._depth = 0
        self._in_str = False
        self._escape = False
        self._start = -1
        self._pos = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out: list[bytes] = []
        buf, i, n = self._buf, self._pos, len(self._buf)
        depth, in_str, escape, start = self._depth, self._in_str, self._escape, self._start
        while i < n:
            c = buf[i]
            if in_str:
                if escape:
                    escape = False
                elif c == 0x5C:  # backslash
                    escape = True
                elif c == 0x22:  # quote
                    in_str = False
            elif c == 0x22:
                in_str = True
            elif c == 0x7B:  # {
                if depth == 0:
                    start = i
                depth += 1
            elif c == 0x7D:  # }
                depth -= 1
                if depth == 0 and start >= 0:
                    out.append(bytes(buf[start:i + 1]))
                    start = -1
            i += 1
        if depth == 0:
            del buf[:i]
            i = 0
        elif start > 0:
            del buf[:start]
            i -= start
            start = 0
        self._pos, self._depth, self._in_str, self._escape, self._start = i, depth, in_str, escape, start
        return out
