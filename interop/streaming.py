"""Writing a large JSON document piece by piece, for StreamingHttpResponse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

FLUSH_BYTES = 64 * 1024
# Datetimes as DRF writes them (UTC with "Z"); dict keys need not be strings.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


def json_document_stream(
    head: Mapping[str, Any],
    sections: Iterable[tuple[str, Iterable[Any]]],
    *,
    flush_bytes: int = FLUSH_BYTES,
) -> Iterator[bytes]:
    """``{**head, key: [items...], ...}`` as bytes, in pieces of about ``flush_bytes``.

    ``head`` must not be empty. Each section's items are consumed lazily, one at a time,
    so a caller that passes database iterators never holds more than one chunk of rows
    and one output piece in memory.
    """
    if not head:
        raise ValueError("head must have at least one key")
    buffer = bytearray(dumps(dict(head))[:-1])  # without the closing brace
    for key, items in sections:
        buffer += b"," + dumps(key) + b":["
        first = True
        for item in items:
            if not first:
                buffer += b","
            first = False
            buffer += dumps(item)
            if len(buffer) >= flush_bytes:
                yield bytes(buffer)
                buffer.clear()
        buffer += b"]"
    buffer += b"}"
    yield bytes(buffer)
