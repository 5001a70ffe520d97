"""The packed binary record of one article, as stored in Redis.

Layout (little-endian):

    header  <BBBB I i I I H H 8s 8s 8s 8s 8s 8s>  = 72 bytes
            version, flags, kind, boilerplate lines (was spare, 0), arrived, published, n_shingles, n_tokens,
            similarity*10000, containment*10000, cluster, duplicate_of,
            canonical_link id, source_link id, content hash, site hash
    then    <H> + signature (full text), <H> + signature (lead),
            <H> + signature (lead from the second paragraph, or empty): each in the stored form of
            dedup.signature.stored (b-bit values: 1 byte each for the full text, 2 per opening),
            <H> + url, <H> + title, <H> + site, <H> + source (UTF-8),
            <H> + spin sketch (version 4 on: dedup.spin.spin_sketch's keys as <I> each, or empty;
              kept so that retention can take the spin keys out of the index once the text that
              gave them has expired with its stream entry),
            <B> text form, <I> + text data: the clean text as
              TEXT_NONE    nothing (empty text),
              TEXT_ZLIB    zlib-compressed (copies and thin pages: their text is nowhere else),
              TEXT_STREAM  the id of the canonical stream entry that carries it (an article that
                           was queued as a canonical by its own decision: the decider's write set
                           (dedup.decider.Store.commands) writes the entry id it assigns in place
                           of the text, which the stream entry holds; it is gone once the stream
                           is trimmed past the entry: Record.text_expired),
              TEXT_DELTA   the 8-byte id of the article it was compared with (its canonical when
                           decided), then the text zlib-compressed with that article's text as
                           the preset dictionary (a near copy costs a few hundred bytes, an
                           exact copy or an excerpt a few dozen). The decision writes it in its
                           write set (dedup.decider.Decider.store_as_delta), and the write set that
                           forgets the base re-inflates it (Decider.inflate_dependents).
No pickle: nothing read back is ever evaluated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

VERSION = 4
"""4: the spin sketch recorded (version 3, still read, has no spin section: its spin keys are
computed again from its text). 3: b-bit signatures and a text form byte (version 2 held 4-byte
LeanMinHash values and always zlib text; such data is refused at start by
dedup.index.ensure_params, IndexParams.format 4)."""
READABLE = (3, 4)
TEXT_NONE, TEXT_ZLIB, TEXT_STREAM, TEXT_DELTA = 0, 1, 2, 3
HEADER = struct.Struct("<BBBBIiIIHH8s8s8s8s8s8s")
NO_ID = b"\x00" * 8

# Flags
THIN = 1
CANONICAL_ELSEWHERE = 2
"""The page's rel=canonical / og:url names a page on another site: it calls itself a copy."""
PINNED = 4
"""An operator promoted this article to canonical."""
SPLIT = 8
"""An operator split this article out: it is never merged by the engine."""
SYNDICATED = 16
"""The text carried a "Source: ... / Read Full Article" line: the page says it republishes."""
BOILERPLATE = 32
"""Lines of the site's learned boilerplate were taken out before fingerprinting (how many: the
header's spare byte, Record.boilerplate_lines)."""
LIST_ARTICLE = 64
"""Too little running text, but a dated article whose body is a list: decided like any article."""

KINDS = {0: None, 1: "exact", 2: "near", 3: "excerpt", 4: "thin"}
KIND_CODES = {name: code for code, name in KINDS.items()}

# Byte offsets of the header fields a decision rewrites (the reference scripts in tests/lua_reference/).
OFFSET_FLAGS = 1
OFFSET_KIND = 2
OFFSET_SIMILARITY = 20
OFFSET_CONTAINMENT = 22
OFFSET_CLUSTER = 24
OFFSET_DUPLICATE_OF = 32


def to_bin(article_id: str) -> bytes:
    return bytes.fromhex(article_id)


def to_hex(raw: bytes) -> str | None:
    return None if raw == NO_ID else raw.hex()


@dataclass(frozen=True)
class Record:
    """One stored article, decoded."""

    id: str
    url: str
    title: str
    site: str
    source: str
    flags: int
    kind: str | None
    arrived: int
    published: int
    n_shingles: int
    n_tokens: int
    similarity: float | None
    containment: float | None
    cluster: str
    duplicate_of: str | None
    canonical_link: str | None
    source_link: str | None
    content_hash: bytes
    site_hash: bytes
    signature: bytes
    lead_signature: bytes
    text_z: bytes
    second_lead_signature: bytes = b""
    boilerplate_lines: int = 0
    """Lines of site boilerplate discounted before fingerprinting (0-255)."""
    text_ref: str = ""
    """The canonical stream entry id that holds the text (TEXT_STREAM), else ""."""
    text_base: str | None = None
    """TEXT_DELTA: the id of the article whose text is the preset dictionary of text_delta."""
    text_delta: bytes = b""
    stream_text: str | None = None
    """The text read from the stream entry or rebuilt from the delta (dedup.engine.Engine fills it
    in when it reads a record); None while unread or once the entry or the base is gone."""
    spin: tuple[int, ...] | None = ()
    """The spin sketch it was indexed under (dedup.spin.spin_sketch); None: not recorded (a version-3
    record)."""

    @property
    def text(self) -> str:
        """The clean text (junk stripped): decompressed, or as read from the canonical stream; ""
        when it expired (text_expired)."""
        if self.text_z:
            return zlib.decompress(self.text_z).decode("utf-8", "replace")
        return self.stream_text or ""

    @property
    def text_expired(self) -> bool:
        """The text was held by a canonical stream entry that trimming has since removed (its own, or
        its delta base's)."""
        return bool(self.text_ref or self.text_base) and self.stream_text is None

    @property
    def published_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.published, UTC) if self.published else None

    @property
    def arrived_at(self) -> datetime:
        return datetime.fromtimestamp(self.arrived, UTC)

    @property
    def is_canonical(self) -> bool:
        return self.kind is None


def _pack_str(value: str) -> bytes:
    raw = value.encode("utf-8", "replace")[:65535]
    return struct.pack("<H", len(raw)) + raw


def pack(record: Record) -> bytes:
    """The bytes stored in Redis for this record."""
    header = HEADER.pack(
        VERSION, record.flags, KIND_CODES[record.kind], max(0, min(255, record.boilerplate_lines)),
        record.arrived, record.published,
        record.n_shingles, record.n_tokens,
        _score(record.similarity), _score(record.containment),
        to_bin(record.cluster), to_bin(record.duplicate_of) if record.duplicate_of else NO_ID,
        to_bin(record.canonical_link) if record.canonical_link else NO_ID,
        to_bin(record.source_link) if record.source_link else NO_ID,
        record.content_hash, record.site_hash,
    )
    parts = [
        header,
        struct.pack("<H", len(record.signature)), record.signature,
        struct.pack("<H", len(record.lead_signature)), record.lead_signature,
        struct.pack("<H", len(record.second_lead_signature)), record.second_lead_signature,
        _pack_str(record.url), _pack_str(record.title), _pack_str(record.site), _pack_str(record.source),
        _pack_spin(record.spin or ()),
    ]
    if record.text_ref:
        ref = record.text_ref.encode("ascii")
        parts += [struct.pack("<BI", TEXT_STREAM, len(ref)), ref]
    elif record.text_base:
        parts += [struct.pack("<BI", TEXT_DELTA, 8 + len(record.text_delta)), to_bin(record.text_base),
                  record.text_delta]
    else:
        parts += [struct.pack("<BI", TEXT_ZLIB if record.text_z else TEXT_NONE, len(record.text_z)), record.text_z]
    return b"".join(parts)


def _pack_spin(spin: tuple[int, ...]) -> bytes:
    return struct.pack(f"<H{len(spin)}I", 4 * len(spin), *spin)


def _score(value: float | None) -> int:
    return 0 if value is None else max(0, min(10000, round(value * 10000)))


def unpack(article_id: str, data: bytes) -> Record:
    """Decode a stored record; raises ValueError on anything malformed."""
    if len(data) < HEADER.size or data[0] not in READABLE:
        found = data[0] if data else None
        raise ValueError(f"article {article_id}: not a version-{VERSION} record (version {found}: written by "
                         "another version of newsdedup; use its key prefix with that version)")
    (_, flags, kind, boilerplate_lines, arrived, published, n_shingles, n_tokens, similarity, containment,
     cluster, duplicate_of, canonical_link, source_link, content_hash, site_hash) = HEADER.unpack_from(data)
    pos = HEADER.size
    chunks: list[bytes] = []
    widths = ("<H",) * (_sections(data) - 1) + ("<BI",)
    for width in widths:
        *form, length = struct.unpack_from(width, data, pos)
        pos += struct.calcsize(width)
        chunks.append(data[pos : pos + length])
        pos += length
    signature, lead, second_lead, url, title, site, source, *spin_section, text_data = chunks
    spin = _unpack_spin(spin_section[0]) if spin_section else None
    text_form = form[0]
    if text_form not in (TEXT_NONE, TEXT_ZLIB, TEXT_STREAM, TEXT_DELTA) or pos != len(data) or \
            (text_form == TEXT_DELTA and len(text_data) < 8):
        raise ValueError(f"article {article_id}: malformed record (text form {text_form}, {len(data) - pos} "
                         "bytes left over)")
    kind_name = KINDS.get(kind)
    is_dup = kind_name not in (None, "thin")
    return Record(
        id=article_id, url=url.decode("utf-8", "replace"), title=title.decode("utf-8", "replace"),
        site=site.decode("utf-8", "replace"), source=source.decode("utf-8", "replace"),
        flags=flags, kind=kind_name, arrived=arrived, published=published,
        n_shingles=n_shingles, n_tokens=n_tokens,
        similarity=similarity / 10000 if is_dup else None,
        containment=containment / 10000 if is_dup else None,
        cluster=cluster.hex(), duplicate_of=to_hex(duplicate_of),
        canonical_link=to_hex(canonical_link), source_link=to_hex(source_link),
        content_hash=content_hash, site_hash=site_hash, signature=signature, lead_signature=lead,
        second_lead_signature=second_lead,
        text_z=text_data if text_form == TEXT_ZLIB else b"",
        text_ref=text_data.decode("ascii", "replace") if text_form == TEXT_STREAM else "",
        text_base=text_data[:8].hex() if text_form == TEXT_DELTA else None,
        text_delta=text_data[8:] if text_form == TEXT_DELTA else b"",
        boilerplate_lines=boilerplate_lines, spin=spin,
    )


def _sections(data: bytes) -> int:
    """How many length-prefixed sections a stored record has (the text's included)."""
    return 9 if data[0] >= 4 else 8


def _unpack_spin(section: bytes) -> tuple[int, ...]:
    if len(section) % 4:
        raise ValueError(f"malformed spin sketch ({len(section)} bytes)")
    return struct.unpack(f"<{len(section) // 4}I", section)


def spin_of(data: bytes) -> tuple[int, ...] | None:
    """The spin sketch recorded in a stored record, without decoding the rest; None when the record
    predates it (version 3)."""
    if data[0] < 4:
        return None
    pos = HEADER.size
    for _ in range(7):
        (length,) = struct.unpack_from("<H", data, pos)
        pos += 2 + length
    (length,) = struct.unpack_from("<H", data, pos)
    return _unpack_spin(data[pos + 2 : pos + 2 + length])


class Header(NamedTuple):
    """The fixed-size head of a stored record: what the decision policy reads without the rest."""

    version: int
    flags: int
    kind: int
    boilerplate_lines: int
    arrived: int
    published: int
    n_shingles: int
    n_tokens: int
    similarity: int
    containment: int
    cluster: bytes
    duplicate_of: bytes
    canonical_link: bytes
    source_link: bytes
    content_hash: bytes
    site_hash: bytes


def header(data: bytes) -> Header:
    """The header of a stored record (raises ValueError when it is not one)."""
    if len(data) < HEADER.size or data[0] not in READABLE:
        raise ValueError(f"not a version-{VERSION} record")
    return Header._make(HEADER.unpack_from(data))


def with_header(data: bytes, head: Header) -> bytes:
    """The stored record with its header replaced (the rest untouched)."""
    return HEADER.pack(*head) + data[HEADER.size:]


def signatures(data: bytes) -> tuple[bytes, bytes, bytes]:
    """The three stored signatures of a record (full text, lead, second lead), as bytes."""
    pos = HEADER.size
    out = []
    for _ in range(3):
        (length,) = struct.unpack_from("<H", data, pos)
        out.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return out[0], out[1], out[2]


def strings_of(data: bytes) -> tuple[str, str, str, str]:
    """url, title, site and source of a stored record, without decoding its text."""
    pos = HEADER.size
    for _ in range(3):
        (length,) = struct.unpack_from("<H", data, pos)
        pos += 2 + length
    out = []
    for _ in range(4):
        (length,) = struct.unpack_from("<H", data, pos)
        out.append(data[pos + 2 : pos + 2 + length].decode("utf-8", "replace"))
        pos += 2 + length
    return out[0], out[1], out[2], out[3]


def text_pos(data: bytes) -> int:
    """Where a stored record's text section starts (its form byte, then <I> length and data)."""
    pos = HEADER.size
    for _ in range(_sections(data) - 1):
        (length,) = struct.unpack_from("<H", data, pos)
        pos += 2 + length
    return pos


def text_section(data: bytes) -> tuple[int, bytes]:
    """The text form and data of a stored record."""
    pos = text_pos(data)
    form, length = struct.unpack_from("<BI", data, pos)
    return form, data[pos + 5 : pos + 5 + length]


def with_text(data: bytes, form: int, text_data: bytes) -> bytes:
    """The stored record with its text section replaced (TEXT_* form and its data)."""
    return data[: text_pos(data)] + struct.pack("<BI", form, len(text_data)) + text_data


def delta_of(text: str, base: str) -> bytes:
    """The text compressed with the base text as zlib's preset dictionary (TEXT_DELTA)."""
    packer = zlib.compressobj(9, zdict=base.encode("utf-8", "replace"))
    return packer.compress(text.encode("utf-8", "replace")) + packer.flush()


def undelta(delta: bytes, base: str) -> str:
    """The text back from delta_of(text, base); raises zlib.error when base is not the one used."""
    unpacker = zlib.decompressobj(zdict=base.encode("utf-8", "replace"))
    return (unpacker.decompress(delta) + unpacker.flush()).decode("utf-8", "replace")


__all__ = ["Header", "Record", "delta_of", "header", "pack", "replace", "signatures", "spin_of", "strings_of",
           "text_pos", "text_section", "undelta", "unpack", "with_header", "with_text"]
