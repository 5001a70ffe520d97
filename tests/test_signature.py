"""Fingerprints: the stored signatures are datasketch's, whole batches or one text at a time."""

from __future__ import annotations

from datasketch import LeanMinHash, MinHash

from dedup.junk import strip_junk
from dedup.normalize import tokens
from dedup.signature import NUM_PERM, SEED, fingerprint, fingerprints, load_signature, shingle_hashes
from tests.textcases import articles, edited, excerpt


def test_signature_bytes_are_datasketchs_lean_minhash() -> None:
    for _, body in articles():
        shingles = shingle_hashes(tokens(strip_junk(body), folded=True))
        sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=int)
        sketch.update_batch(shingles.tolist())
        lean = LeanMinHash(sketch)
        expected = bytearray(lean.bytesize("<"))
        lean.serialize(expected, "<")
        assert fingerprint(body).signature == bytes(expected)
        assert fingerprint(body).n_shingles == len(shingles)
        assert load_signature(bytes(expected)).jaccard(lean) == 1.0


def test_a_batch_fingerprints_each_text_as_it_would_alone() -> None:
    texts = [(body, "") for _, body in articles()]
    texts += [(excerpt(body), "t") for _, body in articles()[:3]] + [(edited(articles()[0][1]), "")]
    texts += [("", ""), ("one two", ""), ("a b c d", "t"), ("\u5148\u65e5\u3001\u4e0d\u6b63", "")]
    batch = fingerprints(texts)
    for (text, title), together in zip(texts, batch, strict=True):
        assert fingerprints([(text, title)])[0] == together
