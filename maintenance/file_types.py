"""What an uploaded attachment's content is, checked against its extension (issue 11.9).

The extension decides how a download is served (its Content-Type comes from the extension), so a
file is accepted only when its bytes are of that type: a Windows program renamed ``.pdf`` or a web
page named ``.png`` is refused. Binary formats are recognised by their signatures through
puremagic; Office Open XML files (``.docx``, ``.xlsx``) are ZIP archives, so the archive must also
hold the parts of that kind of document. Plain-text types (``.txt``, ``.csv``) have no signature:
they are accepted when they look like text (no NUL or other binary control bytes) and carry no
signature of a binary format (so a text file in UTF-16, whose bytes include NULs, is refused). An
extension not described in KINDS (one added to ``ATTACHMENT_ALLOWED_EXTENSIONS`` later) is refused
until it is."""

import zipfile
from dataclasses import dataclass

import puremagic

# How much of a plain-text file is looked at for binary bytes.
TEXT_SAMPLE_BYTES = 64 * 1024
# Control bytes that appear in text files: tab, line feed, vertical tab, form feed, carriage
# return, escape (terminal colours in logs), and the old DOS end-of-file mark.
_TEXT_CONTROLS = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1A, 0x1B}
_BINARY_BYTES = bytes(b for b in range(0x20) if b not in _TEXT_CONTROLS) + b"\x7f"
# Signatures a text file may carry: markup and data formats that are themselves text.
_TEXT_MIME_TYPES = ("text/", "application/xml", "application/json")
# puremagic's confidence from which a signature in a would-be text file counts (a PDF header is
# 0.4; two letters such as "BM" at the start of a CSV are 0.2 and do not count).
_SIGNATURE_CONFIDENCE = 0.4


@dataclass(frozen=True)
class Kind:
    label: str  # in sentences: "The content of x.pdf is not a PDF document."
    signatures: frozenset = frozenset()  # puremagic extensions (no dot) any of which proves the type
    text: bool = False
    zip_part: str = ""  # Office Open XML: a part the archive must hold


_OLE = frozenset({"doc", "dot", "xls", "xlt"})  # the Compound File container of legacy Office files
_OOXML = frozenset({"docx", "xlsx", "pptx", "xlsb", "zip"})

KINDS = {
    "pdf": Kind("a PDF document", frozenset({"pdf"})),
    "png": Kind("a PNG image", frozenset({"png"})),
    "jpg": Kind("a JPEG image", frozenset({"jpg", "jpeg", "jpe", "jfif"})),
    "jpeg": Kind("a JPEG image", frozenset({"jpg", "jpeg", "jpe", "jfif"})),
    "gif": Kind("a GIF image", frozenset({"gif"})),
    "doc": Kind("a Word document", _OLE),
    "xls": Kind("an Excel workbook", _OLE),
    "docx": Kind("a Word document", _OOXML, zip_part="word/"),
    "xlsx": Kind("an Excel workbook", _OOXML, zip_part="xl/"),
    "txt": Kind("plain text", text=True),
    "csv": Kind("a CSV text file", text=True),
}


def _signatures(stream) -> list:
    try:
        return puremagic.magic_stream(stream)
    except (puremagic.PureError, ValueError):  # no known signature; ValueError: empty
        return []
    finally:
        stream.seek(0)


def _looks_like_text(stream) -> bool:
    sample = stream.read(TEXT_SAMPLE_BYTES)
    stream.seek(0)
    if any(byte in _BINARY_BYTES for byte in sample):
        return False
    return not any(
        match.confidence >= _SIGNATURE_CONFIDENCE and not match.mime_type.startswith(_TEXT_MIME_TYPES)
        for match in _signatures(stream)
    )


def _zip_holds(stream, part: str) -> bool:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    finally:
        stream.seek(0)
    return "[Content_Types].xml" in names and any(name.startswith(part) for name in names)


def content_matches(extension: str, stream) -> bool:
    """Whether the bytes of ``stream`` (a seekable binary file, left at its start) are of the type
    the (lower-case, allowed) ``extension`` names."""
    kind = KINDS.get(extension)
    if kind is None:
        return False
    stream.seek(0)
    if kind.text:
        return _looks_like_text(stream)
    found = {match.extension.lower().lstrip(".") for match in _signatures(stream)}
    if not found & kind.signatures:
        return False
    return not kind.zip_part or _zip_holds(stream, kind.zip_part)


def checkable(extension: str) -> bool:
    """Whether uploads with this (lower-case) extension can be checked by content."""
    return extension in KINDS


def label(extension: str) -> str:
    """The type an extension names, in words: "a PDF document"."""
    return KINDS[extension].label
