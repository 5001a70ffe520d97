"""Shingles and MinHash signatures: the fingerprint of one article's text."""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from dedup.junk import strip_junk
from dedup.normalize import _UNSPACED
from dedup.normalize import tokens as tokenize

# The signature scheme. Changing any of these makes stored signatures incomparable; they are
# recorded in Redis (see dedup.index.IndexParams) and a process with other values refuses to start.
SCHEME = "affine32"
NUM_PERM = 128
LEAD_PERM = 16
SEED = 20181031
LEAD_SEED = 20240414
SHINGLE_WORDS = 4
LEAD_WORDS = 40
BITS = 8
"""Bits stored per full-text MinHash value (b-bit MinHash): the low bits of the value mixed by
MurmurHash3's finalizer. Two different values agree by chance once in 2**BITS, which
estimated_jaccard corrects for; band hashes are taken over the stored bits too (4 rows of 8 bits:
a chance band match between unrelated texts is about one in 4 billion)."""
LEAD_BITS = 16
"""Bits per opening value: 16 values only, banded in pairs, so they keep more bits each."""
MIN_TOKENS = 30
"""Texts with fewer words are "thin": recorded, never indexed or merged."""
MAX_WORDS_PER_SENTENCE = 40
"""Texts with fewer than MIN_TOKENS words in sentences are thin too: section fronts and link lists
are runs of headlines, not sentences, and two fronts of one site share most of them. A line counts
as prose up to MAX_WORDS_PER_SENTENCE words per sentence end it holds."""
_CLOSERS = tuple(".!?:;\u3002\uff01\uff1f")
_SENTENCE_END = re.compile(r"(?<!\.\.)[.!?\u3002\uff01\uff1f][\"')\]]?(?:\s|$)|[\u3002\uff01\uff1f]")

_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F],
    dtype=np.uint64,
)


class MinHashScheme(NamedTuple):
    """The affine32 permutations and empty value of datasketch's MinHash(num_perm, seed, scheme="affine32")."""

    permutations: np.ndarray
    """a (odd) and b, one row each: a value h goes to a * h + b modulo 2**32."""
    hashvalues: np.ndarray
    """The MinHash of no shingles: the largest value, num_perm times."""


def affine32(num_perm: int, seed: int) -> MinHashScheme:
    """The permutations datasketch 2.0 draws for MinHash(num_perm=num_perm, seed=seed, scheme="affine32"),
    drawn here the same way (tests/test_signature.py holds them equal): importing datasketch loads scipy
    for its LSH, most of a second of the service's start-up for two small arrays."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return MinHashScheme(np.array([a, b]), np.full(num_perm, (1 << 32) - 1, dtype=np.uint32))


@cache
def _templates() -> tuple[MinHashScheme, MinHashScheme]:
    """The MinHash schemes of the full text and of the openings."""
    return affine32(NUM_PERM, SEED), affine32(LEAD_PERM, LEAD_SEED)


@dataclass(frozen=True)
class Fingerprint:
    """Everything the index needs to know about one text."""

    clean_text: str
    n_tokens: int
    prose_words: int
    n_shingles: int
    content_hash: bytes
    signature: bytes
    """The stored form (see stored) of the MinHash of the full text's word shingles."""
    lead_signature: bytes
    """The stored form of the MinHash of the opening LEAD_WORDS words: finds excerpts of the article."""
    second_lead_signature: bytes = b""
    """The same for the words from the second paragraph on (empty for one paragraph): a standfirst
    or a caption opening one copy and not the other still leaves an opening in common."""

    @property
    def thin(self) -> bool:
        return self.n_tokens < MIN_TOKENS or self.prose_words < MIN_TOKENS


_INNER_ENDS = (". ", "? ", "! ", '." ', '?" ', '!" ', ".' ", ".) ")
_FINAL_ENDS = (".", "?", "!", '."', '?"', '!"', ".'", ".)")


def _sentence_ends(line: str) -> int:
    """How many sentences end in this line (plain string counting: this runs on every line)."""
    ends = sum(line.count(mark) for mark in _INNER_ENDS) - line.count("... ")
    if line.endswith(_FINAL_ENDS) and not line.endswith("..."):
        ends += 1
    return max(ends, 0)


def _unwrap(lines: list[str]) -> list[str]:
    """Rejoin hard-wrapped prose (wire copy, press releases): a line that stops mid-sentence and a
    next line that carries on in lower case belong to one paragraph; headlines start in capitals."""
    out: list[str] = []
    for line in lines:
        if out and line and (line[0].islower() or line[0] in "(\"'") and not out[-1].endswith(_CLOSERS):
            out[-1] = out[-1] + " " + line
        else:
            out.append(line)
    return out


def count_prose_words(clean_text: str, tokens_total: int) -> int:
    """Words that stand in sentences (lines closed by full stops, question or exclamation marks, not
    a teaser's ellipsis): headline lists and navigation have next to none."""
    if clean_text.isascii() or not _UNSPACED.search(clean_text):
        prose = 0
        # " | " separates the items of a flattened list as surely as a line break does.
        for line in _unwrap(clean_text.replace(" | ", "\n").split("\n")):
            ends = _sentence_ends(line)
            words = line.count(" ") + 1
            # One short sentence alone on its line is a headline, not a paragraph.
            if ends >= 2 or (ends and words >= 20):
                prose += min(words, MAX_WORDS_PER_SENTENCE * ends)
        return prose
    # Scripts without spaces: judge by sentence ends against the character tokens.
    return min(tokens_total, MAX_WORDS_PER_SENTENCE * len(_SENTENCE_END.findall(clean_text)))


def _token_hashes(words: list[bytes]) -> np.ndarray:
    return np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))


def combine_runs(hashed: np.ndarray, k: int) -> np.ndarray:
    """32-bit hashes of every run of k (at most 8) consecutive item hashes, in order."""
    span = len(hashed) - k + 1
    with np.errstate(over="ignore"):
        combined = np.zeros(span, dtype=np.uint64)
        for offset in range(k):
            combined = (combined ^ hashed[offset : offset + span]) * _MIX[offset]
            combined ^= combined >> np.uint64(29)
    return (combined >> np.uint64(32)).astype(np.uint32)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is several times slower on arrays this small)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def shingle_hashes(words: list[bytes], k: int = SHINGLE_WORDS) -> np.ndarray:
    """Distinct 32-bit hashes of the word k-grams (the whole text when shorter than k)."""
    if not words:
        return np.empty(0, dtype=np.uint32)
    return _distinct(combine_runs(_token_hashes(words), min(k, len(words))))


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, as datasketch applies it before its affine32 permutations."""
    values = values ^ (values >> np.uint32(16))
    values *= np.uint32(0x85EBCA6B)
    values ^= values >> np.uint32(13)
    values *= np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def _minhash_of_mixed(template: MinHashScheme, mixed: np.ndarray) -> np.ndarray:
    a, b = template.permutations
    if not len(mixed):
        return template.hashvalues.copy()
    with np.errstate(over="ignore"):
        permuted = np.multiply.outer(a, mixed)
        permuted += b[:, None]
    return permuted.min(axis=1)


def stored(values: np.ndarray, bits: int) -> bytes:
    """The stored form of MinHash values (datasketch's hashvalues): `bits` low bits of each value
    mixed by fmix32, little-endian, nothing else (the seed and scheme are the index's parameters)."""
    with np.errstate(over="ignore"):
        mixed = _fmix32(np.asarray(values).astype(np.uint32))
    return (mixed & np.uint32((1 << bits) - 1)).astype(f"<u{bits // 8}").tobytes()


def _stored_rows(values: np.ndarray, bits: int) -> np.ndarray:
    """The stored forms of a batch's values (one column per text, as _batch_minhash returns them):
    one row per text, each row's bytes what stored() gives for that column."""
    with np.errstate(over="ignore"):
        mixed = _fmix32(np.ascontiguousarray(values.T).astype(np.uint32))
    return np.ascontiguousarray((mixed & np.uint32((1 << bits) - 1)).astype(f"<u{bits // 8}"))


def _lean_bytes(template: MinHashScheme, values: np.ndarray) -> bytes:
    """The stored form of a signature of this template (the full text's or an opening's)."""
    return stored(values, LEAD_BITS if template is _templates()[1] else BITS)


def signature_values(signature: bytes, lead: bool = False) -> np.ndarray:
    """The values of a stored signature (full text, or lead=True: an opening), as integers."""
    return np.frombuffer(signature, dtype="<u2" if lead else "<u1")


def jaccard(va: np.ndarray, vb: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures' stored values (signature_values): the share of
    equal values, corrected for values that agree by chance (b-bit MinHash, Li and Koenig 2010:
    J = (P - 2**-b) / (1 - 2**-b), b the width of the values); 0 when empty or of different lengths.
    The one estimator: the decision policy (dedup.policy), the CLI and tests/lua_reference's lib.lua
    compute the same."""
    n = len(va)
    if n == 0 or n != len(vb):
        return 0.0
    chance = 2.0 ** -(8 * va.dtype.itemsize)
    share = int(np.count_nonzero(va == vb)) / n
    return max(0.0, (share - chance) / (1.0 - chance))


def estimated_jaccard(a: bytes, b: bytes, lead: bool = False) -> float:
    """Estimated Jaccard similarity of two stored signatures (full texts, or lead=True: openings)."""
    return jaccard(signature_values(a, lead), signature_values(b, lead))


def fingerprint(text: str, title: str = "") -> Fingerprint:
    """Strip junk, normalise, shingle and sign one article text."""
    return fingerprints([(text, title)])[0]


def _second_paragraph_start(clean: str, n_words: int) -> int | None:
    """Index of the first word of the second paragraph, when there is one with enough words."""
    first_line, _, rest = clean.partition("\n")
    if not rest:
        return None
    start = len(tokenize(first_line, folded=True))
    if n_words - start < LEAD_WORDS // 2:
        return None
    return start


def fingerprints(items: list[tuple[str, str]]) -> list[Fingerprint]:
    """Strip junk, normalise, shingle and sign many (text, title) pairs, with the hashing and
    MinHash arithmetic done for the whole batch in a few array operations."""
    return fingerprints_of_clean([strip_junk(text, title) for text, title in items])


def fingerprints_of_clean(cleans: list[str]) -> list[Fingerprint]:
    """fingerprints() of texts already stripped of junk (and of their site's boilerplate)."""
    items = cleans
    word_lists = [tokenize(clean, folded=True) for clean in cleans]
    sizes = np.array([len(words) for words in word_lists], dtype=np.int64)
    all_words = [word for words in word_lists for word in words]
    token_hashes = _token_hashes(all_words)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    k = SHINGLE_WORDS
    # Shingles of every text laid end to end; texts shorter than k words get one whole-text shingle.
    long_texts = sizes >= k
    pieces: list[np.ndarray] = []
    if len(token_hashes) >= k:
        combined = combine_runs(token_hashes, k)
    else:
        combined = np.empty(0, dtype=np.uint32)
    counts = np.where(long_texts, sizes - k + 1, np.minimum(sizes, 1))
    for index in np.flatnonzero(~long_texts & (sizes > 0)):
        start, size = int(starts[index]), int(sizes[index])
        pieces.append((index, combine_runs(token_hashes[start : start + size], size)))
    shingle_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    shingles = np.empty(int(counts.sum()), dtype=np.uint32)
    for index in np.flatnonzero(long_texts):
        start, count = int(starts[index]), int(counts[index])
        shingles[shingle_starts[index] : shingle_starts[index] + count] = combined[start : start + count]
    for index, values in pieces:
        shingles[shingle_starts[index] : shingle_starts[index] + len(values)] = values
    with np.errstate(over="ignore"):
        mixed = _fmix32(shingles) if len(shingles) else shingles
    present = np.flatnonzero(counts > 0)
    full_template, lead_template = _templates()
    full_values = _batch_minhash(full_template, mixed, shingle_starts[present], len(items), present)
    lead_counts = np.minimum(counts, max(1, LEAD_WORDS - k + 1))
    lead_index = np.concatenate([np.arange(s, s + c) for s, c in zip(shingle_starts, lead_counts, strict=True)]) \
        if len(present) else np.empty(0, dtype=np.int64)
    lead_starts = np.concatenate(([0], np.cumsum(lead_counts)[:-1]))
    lead_values = _batch_minhash(lead_template, mixed[lead_index.astype(np.int64)], lead_starts[present],
                                 len(items), present)
    # Distinct shingles per text: one sort of (text, shingle) keys for the whole batch.
    owner = np.repeat(np.arange(len(items), dtype=np.uint64), counts)
    keyed = np.sort((owner << np.uint64(32)) | shingles.astype(np.uint64))
    first = np.concatenate(([True], keyed[1:] != keyed[:-1])) if len(keyed) else np.empty(0, dtype=bool)
    distinct = np.bincount((keyed[first] >> np.uint64(32)).astype(np.int64), minlength=len(items))
    k_lead = max(1, LEAD_WORDS - k + 1)
    full_rows, lead_rows = _stored_rows(full_values, BITS), _stored_rows(lead_values, LEAD_BITS)
    results = []
    for index, (clean, words) in enumerate(zip(cleans, word_lists, strict=True)):
        start = _second_paragraph_start(clean, len(words)) if long_texts[index] else None
        second = b""
        if start is not None:
            begin = int(shingle_starts[index]) + start
            second = _lean_bytes(lead_template, _minhash_of_mixed(
                lead_template, mixed[begin : min(begin + k_lead, int(shingle_starts[index] + counts[index]))]))
        results.append(Fingerprint(
            clean_text=clean,
            n_tokens=len(words),
            prose_words=count_prose_words(clean, len(words)),
            n_shingles=int(distinct[index]),
            content_hash=hashlib.sha256(b" ".join(words)).digest()[:8],
            signature=full_rows[index].tobytes(),
            lead_signature=lead_rows[index].tobytes(),
            second_lead_signature=second,
        ))
    return results


def _batch_minhash(template: MinHashScheme, mixed: np.ndarray, starts: np.ndarray, n_items: int,
                   present: np.ndarray) -> np.ndarray:
    """MinHash values (perm x item) of consecutive segments of `mixed` starting at `starts`."""
    a, b = template.permutations
    values = np.repeat(template.hashvalues[:, None], n_items, axis=1)
    if len(present) == 0:
        return values
    bounds = np.append(starts, len(mixed))
    # Chunk by items so the permuted matrix stays a few MB.
    step = 16
    for first in range(0, len(present), step):
        last = min(first + step, len(present))
        lo, hi = int(bounds[first]), int(bounds[last])
        with np.errstate(over="ignore"):
            permuted = np.multiply.outer(a, mixed[lo:hi])
            permuted += b[:, None]
        values[:, present[first:last]] = np.minimum.reduceat(permuted, (bounds[first:last] - lo), axis=1)
    return values
