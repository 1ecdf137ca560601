"""Safe XML: lxml with entity resolution, DTDs and network access off, size-capped; small renderers."""
from __future__ import annotations

from typing import Iterable
from xml.sax.saxutils import escape

from lxml import etree

from .errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_comments=True, remove_pis=True)


def parse(data: bytes, limit: int = 2 * 1024 * 1024) -> etree._Element:
    """Parse a request's XML body; anything malformed, oversized or with a DTD is MalformedXML."""
    if len(data) > limit:
        raise S3Error("MaxMessageLengthExceeded")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise S3Error("MalformedXML")
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        raise S3Error("MalformedXML") from None
    if root is None or root.getroottree().docinfo.doctype:  # a DTD in an encoding the check above missed
        raise S3Error("MalformedXML")
    return root


def check_document(data: bytes, root_name: str) -> None:
    """A request body the gateway forwards: well-formed, no DTD, the root element S3 expects — so
    the upstream's own XML parser never sees entity bombs or garbage. An empty body passes (the
    upstream answers it as S3 would)."""
    if not data.strip():
        return
    if local(parse(data, limit=max(len(data), 1)).tag) != root_name:
        raise S3Error("MalformedXML")


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def find_text(root: etree._Element, name: str) -> str | None:
    for child in root:
        if isinstance(child.tag, str) and local(child.tag) == name:
            return child.text or ""
    return None


def element(name: str, value) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, body: Iterable[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">'
            + "".join(body) + f"</{root}>").encode()
