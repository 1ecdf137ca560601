"""RFC 2047 encoded-words for header values: how R2 carries Unicode in ``x-amz-meta-*`` (decode
what a client sent, raw UTF-8 included; encode non-ASCII values as one ``=?UTF-8?B?...?=`` word)."""
from __future__ import annotations

import base64
import re
from email.header import decode_header, make_header

_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")
# control characters (HTAB excepted) in a decoded value: CR/LF would split the header upstream
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def decode_value(value: str) -> str:
    if "=?" in value and _ENCODED_WORD.search(value):
        try:
            return str(make_header(decode_header(value)))
        except (ValueError, LookupError, UnicodeDecodeError):
            return value
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in value):  # raw UTF-8 bytes seen through surrogateescape
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def encode_value(value: str) -> str:
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
