"""The LSH index on Redis: parameters recorded in Redis, and the slots an article takes in it."""

from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache

import redis

from dedup import signature
from dedup.keys import Keys
from dedup.urls import URL_ID_FORMAT


class IndexParamsMismatch(RuntimeError):
    """Redis holds data written with another signature scheme or index layout."""


@dataclass(frozen=True)
class IndexParams:
    """What stored signatures and band keys depend on; recorded once per key prefix."""

    format: int = 3
    """3: cluster values carry what the canonical policy ranks each member by (dedup.policy)."""
    scheme: str = signature.SCHEME
    num_perm: int = signature.NUM_PERM
    lead_perm: int = signature.LEAD_PERM
    seed: int = signature.SEED
    lead_seed: int = signature.LEAD_SEED
    shingle_words: int = signature.SHINGLE_WORDS
    lead_words: int = signature.LEAD_WORDS
    bands: int = 24
    rows: int = 4
    lead_bands: int = 8
    lead_rows: int = 2
    shards: int = 16384
    time_bucket: int = 60
    """Seconds per time bucket (the list of ids decided in that span; retention drops whole ones)."""
    url_ids: int = URL_ID_FORMAT
    """How article ids and seen-set entries are computed from URLs (dedup.urls)."""

    def as_strings(self) -> dict[str, str]:
        return {name: str(value) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Thresholds:
    """Verification thresholds; they change decisions, not stored data, so they are not recorded."""

    near: float = 0.5
    """Estimated Jaccard above which two texts are copies."""
    same_site_near: float = 0.8
    """Two pages of one site share its boilerplate: demand more before calling them copies."""
    contained: float = 0.85
    contained_jaccard: float = 0.25
    """A text almost wholly inside a larger one (a copy padded with junk, or a long excerpt)."""
    excerpt_lead: float = 0.5
    excerpt_containment: float = 0.6
    excerpt_jaccard: float = 0.1
    """An excerpt: the same opening words, mostly contained in the longer text."""
    min_shared: int = 15
    """Fewer shared shingles than this is never a copy, whatever the ratios say."""
    excerpt_ratio: float = 0.8
    """A member this much smaller than the canonical is an excerpt of it."""
    reach: float = 0.9
    """A copy at least this similar to its match is not indexed itself: it would find nothing new."""
    bucket_cap: int = 6
    max_candidates: int = 64
    max_merge: int = 4


_SIG_HEADER = 13  # LeanMinHash bytes: seed (8), negated size (4), scheme code (1), then the values


def _band_hashes(signature: bytes, bands: int, rows: int) -> list[int]:
    """One 32-bit hash per band: the CRC-32 of the band's `rows` consecutive MinHash values."""
    width = 4 * rows
    return [
        zlib.crc32(signature[_SIG_HEADER + band * width : _SIG_HEADER + (band + 1) * width])
        for band in range(bands)
    ]


@lru_cache(maxsize=8)
def shard_names(prefix: str, shards: int) -> tuple[str, ...]:
    """Every band shard key name under a prefix, built once: slots() runs for every article."""
    keys = Keys(prefix)
    return tuple(keys.band_shard(shard) for shard in range(shards))


@lru_cache(maxsize=16)
def _fields_format(count: int) -> struct.Struct:
    return struct.Struct(">" + "BI" * count)


SPIN_BAND = 192
"""Band numbers from here on are spin keys (dedup.spin.spin_sketch): indexed beside the LSH bands,
looked up apart from them by the decider's spin stage (dedup.decider.Decider.spun)."""


def slots(keys: Keys, params: IndexParams, signature: bytes, lead_signature: bytes,
          content_hash: bytes, second_lead_signature: bytes = b"",
          spin: tuple[int, ...] = ()) -> tuple[list[str], bytes]:
    """The shard keys (bands, spin keys, then the content hash) and packed band fields of one
    article. Both openings share the lead band numbers, so one text's opening finds the other's."""
    full = _band_hashes(signature, params.bands, params.rows)
    leads = [_band_hashes(lead_signature, params.lead_bands, params.lead_rows)]
    if second_lead_signature:
        second = _band_hashes(second_lead_signature, params.lead_bands, params.lead_rows)
        leads.append(second)
    names = shard_names(keys.prefix, params.shards)
    numbered: list[int] = []
    shard_keys: list[str] = []
    for band, h in enumerate(full):
        numbered += (band, h)
        shard_keys.append(names[h % params.shards])
    for index, lead in enumerate(leads):
        for band, h in enumerate(lead):
            if index and h == leads[0][band]:
                continue  # the same slot as the first opening's band
            numbered += (128 + band, h)
            shard_keys.append(names[h % params.shards])
    for position, value in enumerate(spin):
        numbered += (SPIN_BAND + position, value)
        shard_keys.append(names[value % params.shards])
    shard_keys.append(names[int.from_bytes(content_hash[:4], "big") % params.shards])
    return shard_keys, _fields_format(len(numbered) // 2).pack(*numbered)


# Fields recorded since a later version, with the value an index written before them implicitly has.
_BEFORE_RECORDED = {"url_ids": "1"}
# A fresh index gets every parameter at once; an existing one is only read (never completed: a field
# it lacks was not true of the data it holds). One script, so two processes starting together agree.
_RECORD_PARAMS = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
"""


def ensure_params(client: redis.Redis, keys: Keys, params: IndexParams) -> None:
    """Record the parameters on first use; refuse to work on data written with other ones."""
    wanted = params.as_strings()
    flat = client.eval(_RECORD_PARAMS, 1, keys.params, *(item for pair in wanted.items() for item in pair))
    stored = {**_BEFORE_RECORDED, **{k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}}
    different = {
        name: (stored.get(name), value) for name, value in wanted.items() if stored.get(name) != value
    }
    if "url_ids" in different:
        old, new = different["url_ids"]
        raise IndexParamsMismatch(
            f"Redis prefix {keys.prefix!r} holds article ids computed from URLs with format {old}, this "
            f"newsdedup computes them with format {new}: mixing them would make known pages look new. "
            "Start this version on a new key prefix (--key-prefix or NEWSDEDUP_REDIS_PREFIX): the service "
            "recrawls its sources there, `newsdedup ingest` re-reads saved records; or keep running the "
            "version that wrote this index"
        )
    if different:
        detail = ", ".join(f"{name}: stored {old} vs ours {new}" for name, (old, new) in different.items())
        raise IndexParamsMismatch(
            f"Redis prefix {keys.prefix!r} holds an index built with other parameters ({detail}); "
            "use another key prefix or the same version of newsdedup"
        )
