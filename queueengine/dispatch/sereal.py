"""A decoder for Sereal documents holding plain data, for ``sereal_<k>`` job fields.

A Perl Job::Async client sends every reference parameter (a hash or an array) as a Sereal blob
(Debian's Sereal writes protocol v5). This reads protocol versions 1 to 5, uncompressed or
zlib-compressed, as described by the published Sereal format specification, and gives the
JSON-shaped value: hashes become ``dict``, arrays ``list``, strings ``str``, integers ``int``,
floats ``float``, undef ``None``, Sereal's booleans ``bool``. References are followed (a value
referenced twice is decoded once and shared). Anything that is not plain data (a blessed
object, a regexp, a weak reference cycle, a long double, a Snappy or Zstandard body, a cyclic
structure) raises :class:`SerealError` saying what was found and where.

Byte strings (Sereal ``BINARY``) are Perl strings without the UTF-8 flag: they are read as
UTF-8 when they are valid UTF-8 and as Latin-1 (Perl's own reading of such a string) otherwise.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T", list[Any], dict[str, Any])

MAGIC_V1 = b"=srl"
MAGIC_V3 = b"=\xf3rl"

TRACK = 0x80
_POS_MAX = 0x0F
_NEG_LOW, _NEG_HIGH = 0x10, 0x1F
VARINT, ZIGZAG, FLOAT, DOUBLE, LONG_DOUBLE, UNDEF = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25
BINARY, STR_UTF8, REFN, REFP, HASH, ARRAY = 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B
OBJECT, OBJECTV, ALIAS, COPY, WEAKEN, REGEXP = 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31
OBJECT_FREEZE, OBJECTV_FREEZE = 0x32, 0x33
CANONICAL_UNDEF, FALSE, TRUE, MANY, PACKET_START, EXTEND, PAD = 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F
ARRAYREF_0, HASHREF_0, SHORT_BINARY_0 = 0x40, 0x50, 0x60

_NAMES = {
    OBJECT: "a blessed object (OBJECT)", OBJECTV: "a blessed object (OBJECTV)",
    OBJECT_FREEZE: "a frozen object (OBJECT_FREEZE)", OBJECTV_FREEZE: "a frozen object (OBJECTV_FREEZE)",
    REGEXP: "a regexp (REGEXP)", LONG_DOUBLE: "a long double (LONG_DOUBLE)", MANY: "MANY",
    PACKET_START: "PACKET_START", EXTEND: "EXTEND",
}

MAX_DEPTH = 100
"""Deepest nesting accepted (a hostile blob cannot exhaust the stack)."""


class SerealError(ValueError):
    """The blob is not a Sereal document of plain data."""


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class _Reader:
    """Decodes one body; ``base`` is the index that Sereal offsets count from."""

    def __init__(self, data: bytes, pos: int, base: int) -> None:
        self.data = data
        self.pos = pos
        self.base = base
        self.tracked: dict[int, Any] = {}
        self.open: set[int] = set()   # offsets of containers still being decoded (cycle check)
        self.depth = 0

    def fail(self, what: str, at: int | None = None) -> SerealError:
        return SerealError(f"{what} at byte {self.pos if at is None else at}")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("truncated document")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated document (wanted {n} bytes)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise self.fail("varint longer than 64 bits")

    def at_offset(self, offset: int) -> Any:
        """Decode the item at ``offset`` (for COPY), leaving the position unchanged."""
        target = self.base + offset
        if offset <= 0 or target >= self.pos:
            raise self.fail(f"bad COPY offset {offset}")
        saved, self.pos = self.pos, target
        try:
            return self.item()
        finally:
            self.pos = saved

    def referenced(self, offset: int, tag: str) -> Any:
        if offset in self.open:
            raise self.fail(f"cyclic structure ({tag} to an enclosing container)")
        if offset not in self.tracked:
            raise self.fail(f"{tag} offset {offset} names no tracked item")
        return self.tracked[offset]

    def item(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH}")
        try:
            while True:
                start = self.pos
                tag = self.byte()
                if tag != PAD:
                    break
            offset = start - self.base
            track = bool(tag & TRACK)
            value = self._item(tag & ~TRACK, offset, track)
            if track:
                self.tracked[offset] = value
            return value
        finally:
            self.depth -= 1

    def _container(self, offset: int, track: bool, value: _T, fill: Callable[[_T], None]) -> _T:
        if track:
            self.tracked[offset] = value
        self.open.add(offset)
        try:
            fill(value)
        finally:
            self.open.discard(offset)
        return value

    def _array(self, count: int, offset: int, track: bool) -> list[Any]:
        return self._container(offset, track, [], lambda out: out.extend(self.item() for _ in range(count)))

    def _hash(self, count: int, offset: int, track: bool) -> dict[str, Any]:
        def fill(out: dict[str, Any]) -> None:
            for _ in range(count):
                key = self.item()
                if not isinstance(key, str):
                    raise self.fail(f"hash key is not a string ({type(key).__name__})")
                out[key] = self.item()
        return self._container(offset, track, {}, fill)

    def _item(self, tag: int, offset: int, track: bool) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per tag
        if tag <= _POS_MAX:
            return tag
        if tag <= _NEG_HIGH:
            return tag - 32
        if tag >= SHORT_BINARY_0:
            return _text(self.take(tag - SHORT_BINARY_0))
        if tag >= HASHREF_0:
            return self._hash(tag - HASHREF_0, offset, track)
        if tag >= ARRAYREF_0:
            return self._array(tag - ARRAYREF_0, offset, track)
        if tag == VARINT:
            return self.varint()
        if tag == ZIGZAG:
            z = self.varint()
            return (z >> 1) ^ -(z & 1)
        if tag == FLOAT:
            return struct.unpack("<f", self.take(4))[0]
        if tag == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if tag in (UNDEF, CANONICAL_UNDEF):
            return None
        if tag in (TRUE, FALSE):
            return tag == TRUE
        if tag == BINARY:
            return _text(self.take(self.varint()))
        if tag == STR_UTF8:
            raw = self.take(self.varint())
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self.fail(f"STR_UTF8 that is not UTF-8 ({exc.reason})") from None
        if tag in (REFN, WEAKEN):
            return self.item()
        if tag in (REFP, ALIAS):
            return self.referenced(self.varint(), "REFP" if tag == REFP else "ALIAS")
        if tag == COPY:
            return self.at_offset(self.varint())
        if tag == HASH:
            return self._hash(self.varint(), offset, track)
        if tag == ARRAY:
            return self._array(self.varint(), offset, track)
        at = self.pos - 1
        what = _NAMES.get(tag, f"unknown tag 0x{tag:02x}")
        if tag in (OBJECT, OBJECTV):
            with contextlib.suppress(SerealError):
                name = self.item() if tag == OBJECT else self.at_offset(self.varint())
                what = f"a blessed object of class {name!r}"
        raise self.fail(f"{what} is not plain data", at)


def decode(blob: bytes) -> Any:
    """Decode a Sereal document of plain data; raise :class:`SerealError` otherwise."""
    if blob[:4] not in (MAGIC_V1, MAGIC_V3) or len(blob) < 6:
        raise SerealError("not a Sereal document (no =srl / =\\xf3rl magic)")
    version, kind = blob[4] & 0x0F, blob[4] >> 4
    if not 1 <= version <= 5 or (version >= 3) != (blob[:4] == MAGIC_V3):
        raise SerealError(f"unsupported Sereal protocol version {version}")
    header = _Reader(blob, 5, 0)
    suffix = header.varint()
    header.take(suffix)              # header suffix (user metadata): not needed
    body = header.pos
    if kind == 3:                    # zlib: <uncompressed length> <compressed length> <deflate data>
        size = header.varint()
        clen = header.varint()
        try:
            raw = zlib.decompress(header.take(clen))
        except zlib.error as exc:
            raise SerealError(f"bad zlib body: {exc}") from None
        if len(raw) != size:
            raise SerealError("zlib body has the wrong length")
        blob, body = raw, 0
    elif kind != 0:
        names = {1: "Snappy", 2: "Snappy", 4: "Zstandard"}
        raise SerealError(f"{names.get(kind, f'encoding {kind}')}-compressed Sereal bodies are not supported")
    # protocol 1 counts offsets from the start of the document; 2+ from the body (first byte = 1)
    base = 0 if version == 1 and kind == 0 else body - 1
    reader = _Reader(blob, body, base)
    value = reader.item()
    if reader.pos != len(blob):
        raise SerealError(f"{len(blob) - reader.pos} trailing bytes after the value")
    return value
