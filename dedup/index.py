"""The LSH index on Redis: parameters recorded in Redis, and the slots an article takes in it."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import redis

from dedup import signature
from dedup.keys import Keys
from dedup.urls import URL_ID_FORMAT


DEFAULT_SHARDS = 16384
FIELDS_PER_ARTICLE = 41
"""Band fields one indexed article adds at most: 24 full bands, 8 lead bands, 8 second-lead bands
and the content hash (a copy close to its match adds none; most add about 33)."""
FIELDS_PER_SHARD = 256
"""Fields per shard for_size aims at: half of Redis's default hash-max-listpack-entries (512), so a
shard stays a listpack up to twice the expected size and hashing unevenly."""


class IndexParamsMismatch(RuntimeError):
    """Redis holds data written with another signature scheme or index layout."""


@dataclass(frozen=True)
class IndexParams:
    """What stored signatures and band keys depend on; recorded once per key prefix."""

    format: int = 4
    """4: cluster values carry what the canonical policy ranks each member by (dedup.policy); compact
    band fields (band number, then the band hash divided by the shard count, in as few bytes as that
    needs), shard counts sized to the index (IndexParams.for_size), b-bit stored signatures (bits,
    lead_bits) and band hashes over the stored bits; records of VERSION 3 or 4 (text forms,
    the spin sketch recorded from 4 on: dedup.record)."""
    scheme: str = signature.SCHEME
    num_perm: int = signature.NUM_PERM
    lead_perm: int = signature.LEAD_PERM
    seed: int = signature.SEED
    lead_seed: int = signature.LEAD_SEED
    bits: int = signature.BITS
    lead_bits: int = signature.LEAD_BITS
    shingle_words: int = signature.SHINGLE_WORDS
    lead_words: int = signature.LEAD_WORDS
    bands: int = 24
    rows: int = 4
    lead_bands: int = 8
    lead_rows: int = 2
    shards: int = DEFAULT_SHARDS
    """Band shard hashes. Each should stay under Redis's hash-max-listpack-entries (512 by default)
    so it keeps the compact listpack encoding: about 41 fields per article spread over the shards
    (see for_size). An existing index keeps the count it was created with (ensure_params)."""
    time_bucket: int = 60
    """Seconds per time bucket (the list of ids decided in that span; retention drops whole ones)."""
    url_ids: int = URL_ID_FORMAT
    """How article ids and seen-set entries are computed from URLs (dedup.urls)."""

    @classmethod
    def for_size(cls, expected_articles: int, **overrides: object) -> IndexParams:
        """Parameters for an index expected to hold this many articles: enough band shards that
        each stays near FIELDS_PER_SHARD fields, so under the listpack limit, at that size."""
        shards = max(DEFAULT_SHARDS, -(-expected_articles * FIELDS_PER_ARTICLE // FIELDS_PER_SHARD))
        return cls(shards=int(overrides.pop("shards", shards)), **overrides)  # type: ignore[arg-type]

    @property
    def field_bytes(self) -> int:
        """Bytes of the band hash left in a shard's field once the shard number took its share."""
        return max(1, (((2**32 - 1) // self.shards).bit_length() + 7) // 8)

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


def _band_hashes(signature: bytes, bands: int, rows: int, bits: int) -> list[int]:
    """One 32-bit hash per band: the CRC-32 of the band's `rows` consecutive stored values (the
    stored bits of each value, dedup.signature.stored: retention re-indexes from stored records)."""
    width = bits // 8 * rows
    return [zlib.crc32(signature[band * width : (band + 1) * width]) for band in range(bands)]


@lru_cache(maxsize=8)
def shard_names(prefix: str, shards: int) -> tuple[str, ...]:
    """Every band shard key name under a prefix, built once: slots() runs for every article."""
    keys = Keys(prefix)
    return tuple(keys.band_shard(shard) for shard in range(shards))


SPIN_BAND = 192
"""Band numbers from here on are spin keys (dedup.spin.spin_sketch): indexed beside the LSH bands,
looked up apart from them by the decider's spin stage (dedup.decider.Decider.spun)."""


def slots(keys: Keys, params: IndexParams, signature: bytes, lead_signature: bytes,
          content_hash: bytes, second_lead_signature: bytes = b"",
          spin: tuple[int, ...] = ()) -> tuple[list[str], bytes]:
    """The shard keys (bands, spin keys, then the content hash) and packed band fields of one article.
    Both openings share the lead band numbers, so one text's opening finds the other's.

    A band hash h goes to shard h % shards under the field (band number, h // shards): the shard
    number already holds part of the hash, the field only the rest (IndexParams.field_bytes). The
    packed fields start with their width, so the scripts can split them."""
    full = _band_hashes(signature, params.bands, params.rows, params.bits)
    leads = [_band_hashes(lead_signature, params.lead_bands, params.lead_rows, params.lead_bits)]
    if second_lead_signature:
        second = _band_hashes(second_lead_signature, params.lead_bands, params.lead_rows, params.lead_bits)
        leads.append(second)
    names = shard_names(keys.prefix, params.shards)
    shards, width = params.shards, params.field_bytes
    fields = [bytes((width + 1,))]
    shard_keys: list[str] = []
    for band, h in enumerate(full):
        fields.append(bytes((band,)) + (h // shards).to_bytes(width, "big"))
        shard_keys.append(names[h % shards])
    for index, lead in enumerate(leads):
        for band, h in enumerate(lead):
            if index and h == leads[0][band]:
                continue  # the same slot as the first opening's band
            fields.append(bytes((128 + band,)) + (h // shards).to_bytes(width, "big"))
            shard_keys.append(names[h % shards])
    for position, value in enumerate(spin):
        fields.append(bytes((SPIN_BAND + position,)) + (value // shards).to_bytes(width, "big"))
        shard_keys.append(names[value % shards])
    shard_keys.append(names[int.from_bytes(content_hash[:4], "big") % shards])
    return shard_keys, b"".join(fields)


def split_fields(packed: bytes, content_hash: bytes) -> list[bytes]:
    """The hash fields of packed slots (as slots() returns them), the content-hash field last: what
    each shard key of slots() holds this article's bucket under."""
    width = packed[0] if packed else 1
    return [packed[i : i + width] for i in range(1, len(packed), width)] + [b"\xff" + content_hash]


# Fields recorded since a later version, with the value an index written before them implicitly has.
_BEFORE_RECORDED = {"url_ids": "1"}
# A fresh index gets every parameter at once; an existing one is only read (never completed: a field
# it lacks was not true of the data it holds). One script, so two processes starting together agree.
_RECORD_PARAMS = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
"""


def ensure_params(client: redis.Redis, keys: Keys, params: IndexParams) -> IndexParams:
    """Record the parameters on first use; refuse to work on data written with other ones. Returns
    the parameters to work with: the shard count is the stored one (an index keeps the count it was
    sized with; a reader configured for another expected size still finds its buckets)."""
    wanted = params.as_strings()
    flat = client.eval(_RECORD_PARAMS, 1, keys.params, *(item for pair in wanted.items() for item in pair))
    stored = {**_BEFORE_RECORDED, **{k.decode(): v.decode() for k, v in zip(flat[::2], flat[1::2], strict=True)}}
    if stored.get("shards", "").isdigit() and int(stored["shards"]) > 0:
        params = replace(params, shards=int(stored["shards"]))
        wanted["shards"] = stored["shards"]
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
    return params
