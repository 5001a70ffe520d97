"""Fingerprints: the stored signatures are b-bit forms of datasketch's, whole batches or one text at a time."""

from __future__ import annotations

from datasketch import MinHash

from dedup.junk import strip_junk
from dedup.normalize import tokens
from dedup.signature import (
    BITS,
    LEAD_PERM,
    LEAD_SEED,
    NUM_PERM,
    SEED,
    affine32,
    estimated_jaccard,
    fingerprint,
    fingerprints,
    shingle_hashes,
    stored,
)
from tests.textcases import articles, edited, excerpt


def _sketch(text: str) -> MinHash:
    shingles = shingle_hashes(tokens(strip_junk(text), folded=True))
    sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=int)
    sketch.update_batch(shingles.tolist())
    return sketch


def test_the_schemes_are_datasketchs_permutations() -> None:
    """Drawn without importing datasketch (it loads scipy), the permutations are the ones it draws."""
    for num_perm, seed in ((NUM_PERM, SEED), (LEAD_PERM, LEAD_SEED)):
        ours, theirs = affine32(num_perm, seed), MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        assert ours.permutations.dtype == theirs.permutations.dtype
        assert (ours.permutations == theirs.permutations).all()
        assert ours.hashvalues.dtype == theirs.hashvalues.dtype
        assert (ours.hashvalues == theirs.hashvalues).all()


def test_stored_signatures_are_b_bit_forms_of_datasketchs_minhash() -> None:
    for _, body in articles():
        sketch = _sketch(body)
        assert fingerprint(body).signature == stored(sketch.hashvalues, BITS)
        assert len(fingerprint(body).signature) == NUM_PERM * BITS // 8
        assert fingerprint(body).n_shingles == len(shingle_hashes(tokens(strip_junk(body), folded=True)))


def test_b_bit_estimates_track_datasketchs_full_estimates() -> None:
    """Corrected for chance agreements, the stored bits estimate what the full values do: copies
    stay copies, unrelated texts stay near zero."""
    bodies = [body for _, body in articles()]
    pairs = [(body, edited(body)) for body in bodies] + [(body, excerpt(body)) for body in bodies]
    pairs += list(zip(bodies, bodies[1:], strict=False))
    for a, b in pairs:
        full = _sketch(a).jaccard(_sketch(b))
        estimate = estimated_jaccard(fingerprint(a).signature, fingerprint(b).signature)
        assert abs(estimate - full) <= 0.08, (full, estimate)
    assert estimated_jaccard(fingerprint(bodies[0]).signature, fingerprint(bodies[0]).signature) == 1.0


def test_a_batch_fingerprints_each_text_as_it_would_alone() -> None:
    texts = [(body, "") for _, body in articles()]
    texts += [(excerpt(body), "t") for _, body in articles()[:3]] + [(edited(articles()[0][1]), "")]
    texts += [("", ""), ("one two", ""), ("a b c d", "t"), ("\u5148\u65e5\u3001\u4e0d\u6b63", "")]
    batch = fingerprints(texts)
    for (text, title), together in zip(texts, batch, strict=True):
        assert fingerprints([(text, title)])[0] == together
