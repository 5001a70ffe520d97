"""The decision policy, without Redis: verify candidates, elect a cluster's canonical, relate members to it.

Everything here is pure: it works on `Facts` (what the policy reads of a stored record, parsed through
dedup.record) and on cluster values (`ClusterValue`), and returns what to decide. dedup/decider.py
reads and writes Redis around it. A faithful port of the Lua scripts that decided before (kept as a
reference for the differential test in tests/lua_reference/).

A cluster's stored value carries, per member, what the canonical policy ranks by (flags, size, dates,
links), so that a join elects the canonical from that value alone: deciding the 500th copy of a story
costs about what the 5th does. Members' records are read only when the canonical changes (every
member is then related to the new one) or clusters merge.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from dedup import record as rec
from dedup.index import Thresholds
from dedup.signature import jaccard, signature_values

NO_ID = rec.NO_ID
KIND_CANONICAL, KIND_EXACT, KIND_NEAR, KIND_EXCERPT, KIND_THIN = 0, 1, 2, 3, 4
KIND_NAMES = {KIND_EXACT: "exact", KIND_NEAR: "near", KIND_EXCERPT: "excerpt"}

# Why a canonical won (Engine.REASONS has the words).
(REASON_SINGLE, REASON_OVERRIDE, REASON_NAMED, REASON_SELF_DECLARED, REASON_SYNDICATED, REASON_COMPLETE,
 REASON_EARLIEST, REASON_ARRIVAL) = range(8)
# The reason each criterion of the canonical policy stands for (see _criteria).
_REASON_OF = (REASON_OVERRIDE, REASON_NAMED, REASON_SELF_DECLARED, REASON_SYNDICATED, REASON_COMPLETE,
              REASON_EARLIEST, REASON_EARLIEST, REASON_EARLIEST, REASON_EARLIEST, REASON_ARRIVAL)


def stat_kind(kind: int) -> str:
    """The stats counter of a kind."""
    if kind == KIND_CANONICAL:
        return "canonicals"
    return "dup_" + KIND_NAMES.get(kind, "other")


class Facts:
    """One stored record as the policy sees it: the header fields (mutable: a decision rewrites
    kind, scores, cluster and flags) and the signatures, read lazily."""

    __slots__ = ("_lead", "_lead2", "_sig", "arrived", "canonical_link", "cluster", "containment", "content",
                 "duplicate_of", "flags", "head", "id", "kind", "n_shingles", "published", "raw",
                 "similarity", "site", "source_link", "votes")

    def __init__(self, article_id: bytes, raw: bytes) -> None:
        head = rec.header(raw)
        self.id = article_id
        self.raw = raw
        self.head = head
        self.flags = head.flags
        self.kind = head.kind
        self.arrived = head.arrived
        self.published = head.published
        self.n_shingles = head.n_shingles
        self.similarity = head.similarity
        self.containment = head.containment
        self.cluster = head.cluster
        self.duplicate_of = head.duplicate_of
        self.canonical_link = head.canonical_link
        self.source_link = head.source_link
        self.content = head.content_hash
        self.site = head.site_hash
        self._sig: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.votes = 0

    def _signatures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sig is None:
            full, lead, second = rec.signatures(self.raw)
            self._sig = (signature_values(full), signature_values(lead, lead=True),
                         signature_values(second, lead=True))
        return self._sig

    @property
    def signature(self) -> np.ndarray:
        return self._signatures()[0]

    @property
    def lead(self) -> np.ndarray:
        return self._signatures()[1]

    @property
    def lead2(self) -> np.ndarray:
        return self._signatures()[2]

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def to_bytes(self) -> bytes:
        """The record with the header as it stands now."""
        head = self.head._replace(
            flags=self.flags, kind=self.kind, similarity=self.similarity, containment=self.containment,
            cluster=self.cluster, duplicate_of=self.duplicate_of,
        )
        if head == self.head:
            return self.raw
        self.raw = rec.with_header(self.raw, head)
        self.head = head
        return self.raw


@dataclass
class Member:
    """What the canonical policy reads of one member (kept in the cluster value)."""

    id: bytes
    flags: int
    n_shingles: int
    published: int
    arrived: int
    canonical_link: bytes
    source_link: bytes
    votes: int = 0

    @classmethod
    def of(cls, facts: Facts) -> Member:
        return cls(facts.id, facts.flags, facts.n_shingles, facts.published, facts.arrived,
                   facts.canonical_link, facts.source_link)


_MEMBER = struct.Struct("<8sBIiI8s8s")
_MEMBER_DTYPE = np.dtype([("id", ">u8"), ("flags", "u1"), ("n", "<u4"), ("published", "<i4"),
                          ("arrived", "<u4"), ("canonical_link", ">u8"), ("source_link", ">u8")])
assert _MEMBER_DTYPE.itemsize == _MEMBER.size


def pack_member(m: Member | Facts) -> bytes:
    """One member's entry in a cluster value."""
    return _MEMBER.pack(m.id, m.flags, m.n_shingles, m.published, m.arrived, m.canonical_link, m.source_link)


class ClusterValue:
    """The stored value of a cluster of two or more: canonical id, reason code, then one entry per
    member (id, flags, n_shingles, published, arrived, canonical link, source link; 37 bytes). The
    entries stay packed (`table`): a join appends one and elects from the table with array operations."""

    HEAD = 9

    def __init__(self, canonical: bytes, reason: int, table: bytes) -> None:
        self.canonical = canonical
        self.reason = reason
        self.table = table

    @classmethod
    def of(cls, canonical: bytes, reason: int, members: list[Member] | list[Facts]) -> ClusterValue:
        return cls(canonical, reason, b"".join(pack_member(m) for m in members))

    @classmethod
    def parse(cls, raw: bytes) -> ClusterValue:
        return cls(raw[:8], raw[8], raw[cls.HEAD:])

    @property
    def members(self) -> list[Member]:
        return members_of_table(self.table)

    @property
    def ids(self) -> list[bytes]:
        size = _MEMBER.size
        return [self.table[pos : pos + 8] for pos in range(0, len(self.table) - size + 1, size)]

    @staticmethod
    def member_ids(raw: bytes) -> list[bytes]:
        """Just the member ids of a stored value."""
        return ClusterValue.parse(raw).ids

    def pack(self) -> bytes:
        return b"".join([self.canonical, bytes([self.reason]), self.table])


def members_of_table(table: bytes) -> list[Member]:
    return [Member(*fields) for fields in _MEMBER.iter_unpack(table)]


def table_size(table: bytes) -> int:
    return len(table) // _MEMBER.size


def table_id(table: bytes, index: int) -> bytes:
    pos = index * _MEMBER.size
    return table[pos : pos + 8]


def choose_in_table(table: bytes, excerpt_ratio: float) -> tuple[int, int]:
    """choose_canonical over a packed member table (no member objects for a large cluster)."""
    if table_size(table) > _SMALL:
        return _choose_canonical_array(np.frombuffer(table, dtype=_MEMBER_DTYPE), excerpt_ratio)
    return _choose_canonical_small(members_of_table(table), excerpt_ratio)


# Verification


def intersection(j: float, na: int, nb: int) -> float:
    """Shared shingles estimated from Jaccard and the exact set sizes: |A n B| = J (|A| + |B|) / (1 + J)."""
    return j * (na + nb) / (1 + j)


def opening_similarity(a: Facts, c: Facts) -> float:
    """How alike two texts open: their first openings, or one's first against the other's opening
    from its second paragraph (a standfirst or caption on one side only)."""
    best = jaccard(a.lead, c.lead)
    if best < 1 and len(c.lead2):
        best = max(best, jaccard(a.lead, c.lead2))
    if best < 1 and len(a.lead2):
        best = max(best, jaccard(a.lead2, c.lead))
    return best


@dataclass
class Scored:
    """A candidate verified against an article."""

    record: Facts
    kind: int | None
    score: float
    jaccard: float
    containment: float

    def rank(self) -> tuple[bool, float, bytes]:
        return (self.kind is None, -self.score, self.record.id)


def verify(a: Facts, c: Facts, t: Thresholds, same_hash: bool, spun: bool = False) -> Scored:
    """Is c a copy of a? Estimated Jaccard, containment from Jaccard and the exact shingle counts.
    `spun`: the spin stage verified c as a spun copy of a (dedup.spin): on another site, one the rules
    reject is a near copy all the same."""
    if same_hash or c.content == a.content:
        return Scored(c, KIND_EXACT, 2, 1, 1)
    kind = None
    j = jaccard(a.signature, c.signature)
    small = min(a.n_shingles, c.n_shingles)
    large = max(a.n_shingles, c.n_shingles)
    shared = intersection(j, a.n_shingles, c.n_shingles)
    contained = min(1, shared / max(1, small))
    if shared >= t.min_shared:
        if a.site == c.site:
            # Two pages of one site share its boilerplate and its lists of headlines: they are copies
            # only when nearly identical and opening with the same words.
            if j >= t.same_site_near and jaccard(a.lead, c.lead) >= t.excerpt_lead:
                kind = KIND_NEAR
        elif j >= t.near:
            kind = KIND_NEAR
        elif contained >= t.contained and j >= t.contained_jaccard:
            kind = KIND_EXCERPT if small < t.excerpt_ratio * large else KIND_NEAR
        elif (contained >= t.excerpt_containment and j >= t.excerpt_jaccard
              and small < t.excerpt_ratio * large and opening_similarity(a, c) >= t.excerpt_lead):
            kind = KIND_EXCERPT
    if kind is None and spun and a.site != c.site:
        kind = KIND_NEAR
    return Scored(c, kind, max(j, contained * 0.9), j, contained)


def verify_thin(a: Facts, c: Facts, t: Thresholds, same_hash: bool) -> Scored:
    """Is c a copy of a when one of them is a thin page (too little running text: a list, a table,
    a front, an error page) and the other an article? The same text (on any site, as verify has it:
    the content-hash slot, read first, may hold only such a copy); else only on another site, and only
    when the texts are nearly the same or one lies almost wholly in the other: a page that repeats an
    article is an article (a list article's copy on an undated page, say), a thin page that shares a
    few lines with one is not. Two thin pages are never compared."""
    scored = verify(a, c, t, same_hash)
    if scored.kind == KIND_EXACT:
        return scored
    strong = scored.kind is not None and (
        scored.jaccard >= t.near or (scored.containment >= t.contained and scored.jaccard >= t.contained_jaccard))
    if a.site == c.site or not strong:
        scored.kind = None
    return scored


def ranked(scored: list[Scored]) -> list[Scored]:
    """Copies first, then by score, then by id."""
    return sorted(scored, key=Scored.rank)


def relation(m: Facts, c: Facts, excerpt_ratio: float) -> tuple[int, float, float]:
    """How member m relates to canonical c: kind, similarity (Jaccard), containment of m in c."""
    if m.content == c.content:
        return KIND_EXACT, 1, 1
    j = jaccard(m.signature, c.signature)
    inter = intersection(j, m.n_shingles, c.n_shingles)
    contained = min(1, inter / max(1, m.n_shingles))
    if m.n_shingles < excerpt_ratio * c.n_shingles and contained >= 0.5:
        return KIND_EXCERPT, j, contained
    return KIND_NEAR, j, contained


def score_bits(value: float) -> int:
    """A score as stored (x 10000, rounded half up)."""
    return math.floor(value * 10000 + 0.5)


def adds_reach(a: Facts, matches: list[Scored], reach: float) -> bool:
    """Whether an article extends its cluster's reach in the index: not when it is a near-identical
    copy of its best match opening with the same words (it would find nothing new)."""
    if not matches:
        return True
    best = matches[0]
    if best.kind == KIND_EXACT:
        return False
    return best.jaccard < reach or jaccard(a.lead, best.record.lead) < reach


# The canonical policy (ARCHITECTURE.md): overrides, then pages naming a member, then members that call
# themselves copies, then completeness, then the earliest publication date, then arrival (stamped in
# whole seconds), then the member decided first (listed first in its cluster): an article decided in
# the same second as its original stays behind it, wherever the second boundaries fall.

_SMALL = 24
"""Clusters up to this size are elected member by member; larger ones with array operations."""


def _criteria(m: Member | Facts, max_n: int, excerpt_ratio: float) -> tuple[int | float, ...]:
    p = m.published
    return (
        1 if m.flags & rec.PINNED else 0,
        m.votes,
        0 if m.flags & rec.CANONICAL_ELSEWHERE else 1,
        0 if m.flags & rec.SYNDICATED else 1,
        1 if m.n_shingles >= excerpt_ratio * max_n else 0,
        1 if p != 0 else 0,
        # Dates compare by day first: a date read from a URL or a date-only field says midnight, which
        # is no evidence against a timestamp later that same day.
        -(p // 86400) if p != 0 else 0,
        1 if (p != 0 and p % 86400 != 0) else 0,
        -p if p != 0 else 0,
        -m.arrived,
    )


def choose_canonical(members: list[Member] | list[Facts], excerpt_ratio: float) -> tuple[int, int]:
    """The index of the canonical among members, and the reason it beat the runner-up."""
    if len(members) > _SMALL:
        table = np.frombuffer(b"".join(pack_member(m) for m in members), dtype=_MEMBER_DTYPE)
        best, reason = _choose_canonical_array(table, excerpt_ratio)
        return best, reason
    return _choose_canonical_small(members, excerpt_ratio)


def _choose_canonical_small(members: list[Member] | list[Facts], excerpt_ratio: float) -> tuple[int, int]:
    """choose_canonical member by member."""
    by_id = {m.id: m for m in members}
    max_n = 0
    for m in members:
        m.votes = 0
        max_n = max(max_n, m.n_shingles)
    for m in members:
        named: set[bytes] = set()
        for link in (m.canonical_link, m.source_link):
            if link != NO_ID and link != m.id and link in by_id and link not in named:
                by_id[link].votes += 1
                named.add(link)
    criteria = [_criteria(m, max_n, excerpt_ratio) for m in members]
    best = 0
    for i in range(1, len(members)):
        if criteria[i] > criteria[best]:  # a tie stays with the member listed first: decided first
            best = i
    reason = REASON_SINGLE
    if len(members) > 1:
        first = 99
        top = criteria[best]
        for i, c in enumerate(criteria):
            if i != best:
                at = next((k for k in range(len(c)) if c[k] != top[k]), 99)
                first = min(first, at)
        reason = _REASON_OF[first] if first < len(_REASON_OF) else REASON_ARRIVAL
    return best, reason


def _choose_canonical_array(table: np.ndarray, excerpt_ratio: float) -> tuple[int, int]:
    """choose_canonical for a large cluster: the same election in a few array operations on its table."""
    n = len(table)
    ids = table["id"]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]

    def member_index(links: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.minimum(np.searchsorted(sorted_ids, links), n - 1)
        return sorted_ids[pos] == links, order[pos]

    first, second = table["canonical_link"], table["source_link"]
    found1, at1 = member_index(first)
    found2, at2 = member_index(second)
    vote1 = (first != 0) & (first != ids) & found1
    vote2 = (second != 0) & (second != ids) & found2 & (second != first)
    votes = np.bincount(np.concatenate([at1[vote1], at2[vote2]]), minlength=n).astype(np.int64)
    flags = table["flags"].astype(np.int64)
    size = table["n"].astype(np.int64)
    published = table["published"].astype(np.int64)
    dated = published != 0
    crit = np.stack([
        (flags & rec.PINNED != 0).astype(np.int64),
        votes,
        (flags & rec.CANONICAL_ELSEWHERE == 0).astype(np.int64),
        (flags & rec.SYNDICATED == 0).astype(np.int64),
        (size.astype(np.float64) >= excerpt_ratio * float(size.max())).astype(np.int64),
        dated.astype(np.int64),
        np.where(dated, -(published // 86400), 0),
        (dated & (published % 86400 != 0)).astype(np.int64),
        np.where(dated, -published, 0),
        -table["arrived"].astype(np.int64),
    ], axis=1)
    # Highest criteria first, then the member listed first (decided first).
    best = int(np.lexsort((np.arange(n), *(-crit[:, k] for k in range(crit.shape[1] - 1, -1, -1))))[0])
    others = np.delete(crit, best, axis=0)
    differs = others != crit[best]
    at = np.where(differs.any(axis=1), differs.argmax(axis=1), 99)
    first_at = int(at.min())
    return best, _REASON_OF[first_at] if first_at < len(_REASON_OF) else REASON_ARRIVAL


__all__ = [
    "ClusterValue", "Facts", "Member", "Scored", "adds_reach", "choose_canonical", "choose_in_table",
    "members_of_table", "opening_similarity", "pack_member", "table_id", "table_size",
    "ranked", "relation", "score_bits", "stat_kind", "verify", "verify_thin",
]
