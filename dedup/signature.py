"""Shingles and MinHash signatures: the fingerprint of one article's text."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHash

from dedup.junk import strip_junk
from dedup.normalize import tokens as tokenize

# The signature scheme. Changing any of these makes stored signatures incomparable; they are
# recorded in Redis (see dedup.index.IndexParams) and a process with other values refuses to start.
SCHEME = "affine32"
NUM_PERM = 128
LEAD_PERM = 32
SEED = 20181031
LEAD_SEED = 20240414
SHINGLE_WORDS = 4
LEAD_WORDS = 40
MIN_TOKENS = 30
"""Texts with fewer words are "thin": recorded, never indexed or merged."""

_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53],
    dtype=np.uint64,
)
_FULL_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
_LEAD_TEMPLATE = MinHash(num_perm=LEAD_PERM, seed=LEAD_SEED, scheme=SCHEME)


@dataclass(frozen=True)
class Fingerprint:
    """Everything the index needs to know about one text."""

    clean_text: str
    n_tokens: int
    n_shingles: int
    content_hash: bytes
    signature: bytes
    """LeanMinHash bytes (little-endian) of the full text's word shingles."""
    lead_signature: bytes
    """LeanMinHash bytes of the opening LEAD_WORDS words: finds excerpts of the article."""

    @property
    def thin(self) -> bool:
        return self.n_tokens < MIN_TOKENS


def _token_hashes(words: list[bytes]) -> np.ndarray:
    return np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))


def shingle_hashes(words: list[bytes], k: int = SHINGLE_WORDS) -> np.ndarray:
    """Distinct 32-bit hashes of the word k-grams (the whole text when shorter than k)."""
    if not words:
        return np.empty(0, dtype=np.uint32)
    hashed = _token_hashes(words)
    if len(words) < k:
        k = len(words)
    span = len(words) - k + 1
    with np.errstate(over="ignore"):
        combined = np.zeros(span, dtype=np.uint64)
        for offset in range(k):
            combined = (combined ^ hashed[offset : offset + span]) * _MIX[offset]
            combined ^= combined >> np.uint64(29)
    return np.unique((combined >> np.uint64(32)).astype(np.uint32))


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, as datasketch applies it before its affine32 permutations."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_values(template: MinHash, shingles: np.ndarray) -> np.ndarray:
    """The affine32 MinHash of the shingle hashes: datasketch's update_batch, vectorised."""
    a, b = template.permutations
    values = template.hashvalues.copy()
    for start in range(0, len(shingles), 2048):
        with np.errstate(over="ignore"):
            mixed = _fmix32(shingles[start : start + 2048].astype(np.uint32))
            permuted = np.multiply.outer(a, mixed)
            permuted += b[:, None]
        np.minimum(values, permuted.min(axis=1), out=values)
    return values


def _lean_bytes(template: MinHash, shingles: np.ndarray) -> bytes:
    lean = LeanMinHash(seed=template.seed, hashvalues=minhash_values(template, shingles), scheme=SCHEME)
    buf = bytearray(lean.bytesize("<"))
    lean.serialize(buf, "<")
    return bytes(buf)


def fingerprint(text: str, title: str = "") -> Fingerprint:
    """Strip junk, normalise, shingle and sign one article text."""
    clean = strip_junk(text, title)
    words = tokenize(clean, folded=True)
    shingles = shingle_hashes(words)
    lead = shingle_hashes(words[:LEAD_WORDS])
    digest = hashlib.sha256(b" ".join(words)).digest()[:8]
    return Fingerprint(
        clean_text=clean,
        n_tokens=len(words),
        n_shingles=int(len(shingles)),
        content_hash=digest,
        signature=_lean_bytes(_FULL_TEMPLATE, shingles),
        lead_signature=_lean_bytes(_LEAD_TEMPLATE, lead),
    )


def load_signature(data: bytes) -> LeanMinHash:
    """A LeanMinHash back from its stored bytes (no pickle involved)."""
    return LeanMinHash.deserialize(data, "<")
