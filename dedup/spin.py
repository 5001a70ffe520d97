"""Spin-robust comparison: what a spinner keeps when it rewrites every common word.

Spinners swap common words for synonyms, put quotes into reported speech and swap adjacent
sentences, but keep names, numbers, the order of facts and sentences, their lengths and most
function words. Four views of a text are built here, each measured in benchmarks/spin.py:

- anchors: names and figures (capitalised words inside a sentence, tokens with digits) in order,
  shingled in runs of ANCHOR_RUN;
- skeleton: the function words and anchors in order, every run of other words one placeholder,
  shingled in runs of SKELETON_RUN (the grammar a synonym swap leaves standing);
- spots: SpotSigs (Theobald et al., SIGIR 2008): a chain of the next SPOT_CHAIN content words after
  each antecedent function word;
- sentences: per sentence its anchors and length, aligned in order between two texts.

`SpinProfile.compare` gives the scores; `is_spun_copy` is the verdict chosen by measurement.

In the decision path (dedup/decider.py, Decider.spun): every article gets SPIN_KEYS spin keys at
prepare time (`spin_sketch`: a MinHash of its anchor pairs, about 0.1-0.3 ms), indexed beside its
LSH bands (journalled with the rest of a batch's writes). Deciding an article, the decider reads its
spin keys with its bands (single-key pipelined reads, as on Redis Cluster); a candidate on another
site whose estimated Jaccard lies between SPIN_MIN_JACCARD and the near threshold (with more spin keys
shared at the low end: worth_profiling) is profiled and judged by `SpinVerifier` (is_spun_copy), and
the policy takes the ids it verified as near copies
(dedup.policy.verify). Nothing extra is stored per article: the keys are computed again from the
stored text when the article leaves the index.
Everything here is pure.
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from dedup.normalize import fold
from dedup.signature import combine_runs

ANCHOR_RUN = 3
SKELETON_RUN = 8
SPOT_CHAIN = 2
MIN_ANCHORED_SENTENCES = 4
"""Texts with fewer sentences holding a name or figure are not judged (too little to align)."""

# English function words: the grammar spinners leave alone. Capitalised, they are not names.
FUNCTION_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also its it's he's she's they're
    we're i'm don't can't won't didn't doesn't isn't wasn't weren't hasn't haven't hadn't may might
    must shall one two since though although whether yet""".split()
)
# SpotSigs antecedents: frequent function words whose following words make a spot.
SPOT_ANTECEDENTS = frozenset("a an the is was were are be been has had have there this that".split())

_TOKEN = re.compile(r"([\"“‘(\[]?)(\w[\w'’.,%$-]*)")
"""A word, and apart the opening quote or bracket before it."""
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)\]]*\s+|\n+")
_HAS_DIGIT = re.compile(r"\d")
_TRAILING = ".,'’-"


@dataclass(frozen=True)
class Sentence:
    """One sentence as the aligner sees it: its anchors and its length in words."""

    anchors: frozenset[str]
    words: int


@dataclass(frozen=True)
class SpinScores:
    """How alike two texts are in each spin-robust view (each in [0, 1])."""

    anchors: float
    """Containment of the smaller text's anchor runs in the other's."""
    skeleton: float
    """Containment of the smaller text's skeleton runs in the other's."""
    spots: float
    """Containment of the smaller text's spot signatures in the other's."""
    aligned: float
    """Share of the shorter text's anchored sentences aligned, in order, with the other's."""
    judged: bool
    """False when either text has too few anchored sentences to judge."""
    aligned_longer: float = 0.0
    """The same aligned sentences over the longer text's anchored ones: low when one text is much
    shorter (an excerpt against a report quoting its opening sentences)."""
    sentences: int = 0
    """Anchored sentences of the text with fewer."""


@dataclass(frozen=True)
class SpinProfile:
    """The spin-robust views of one text."""

    sentences: tuple[Sentence, ...]
    anchor_runs: frozenset[int]
    skeleton_runs: frozenset[int]
    spots: frozenset[int]

    @property
    def anchored_sentences(self) -> int:
        return sum(1 for s in self.sentences if s.anchors)

    def compare(self, other: SpinProfile) -> SpinScores:
        """The scores of this text against another."""
        judged = min(self.anchored_sentences, other.anchored_sentences) >= MIN_ANCHORED_SENTENCES
        aligned = aligned_share(self.sentences, other.sentences)
        longer = max(self.anchored_sentences, other.anchored_sentences)
        shorter = min(self.anchored_sentences, other.anchored_sentences)
        return SpinScores(
            anchors=containment(self.anchor_runs, other.anchor_runs),
            skeleton=containment(self.skeleton_runs, other.skeleton_runs),
            spots=containment(self.spots, other.spots),
            aligned=aligned,
            judged=judged,
            aligned_longer=aligned * shorter / longer if longer else 0.0,
            sentences=shorter,
        )


def containment(first: frozenset[int], second: frozenset[int]) -> float:
    """Shared items over the smaller set's size (0 when either is empty)."""
    if not first or not second:
        return 0.0
    return len(first & second) / min(len(first), len(second))


def _hash_runs(items: list[str], size: int) -> frozenset[int]:
    """32-bit hashes of every run of `size` consecutive items (one of them all, when fewer)."""
    if not items:
        return frozenset()
    hashed = np.fromiter(map(zlib.crc32, map(str.encode, items)), dtype=np.uint64, count=len(items))
    return frozenset(combine_runs(hashed, min(size, len(items))).tolist())


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (paragraph breaks end a sentence too)."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _words(sentence: str) -> list[tuple[str, bool, bool]]:
    """(folded word, capitalised, opens the sentence or a quote) for each word."""
    out = []
    first = True
    for opener, raw in _TOKEN.findall(sentence):
        raw = raw.rstrip(_TRAILING)
        if raw:
            out.append((raw.casefold().replace("’", "'"), raw[0].isupper(), first or bool(opener)))
        first = False
    return out


def _is_anchor(word: str, capital: bool, opens: bool, names: set[str]) -> bool:
    if _HAS_DIGIT.search(word):
        return True
    if word in FUNCTION_WORDS or len(word) < 2:
        return False
    # A capital at the start of a sentence is grammar; there it counts only for a word the text
    # also capitalises mid-sentence.
    return capital and (not opens or word in names)


def profile(text: str, spots: bool = True, anchor_runs: bool = True) -> SpinProfile:
    """The spin-robust views of a text (clean text, one paragraph per line); spots=False and
    anchor_runs=False leave the SpotSigs and anchor-run views empty (the verdict uses neither)."""
    sentences = [_words(s) for s in split_sentences(fold(text))]
    names = {w for words in sentences for w, capital, opens in words if capital and not opens}
    anchor_seq: list[str] = []
    skeleton: list[str] = []
    spot_list: list[str] = []
    aligned: list[Sentence] = []
    for words in sentences:
        found = []
        for position, (word, capital, opens) in enumerate(words):
            # _is_anchor, inlined (this loop is the stage's main cost)
            if (not word.isalpha() and _HAS_DIGIT.search(word)) or (
                    capital and word not in FUNCTION_WORDS and len(word) >= 2 and (not opens or word in names)):
                found.append(word.replace(",", ""))
                skeleton.append(found[-1])
            elif word in FUNCTION_WORDS:
                skeleton.append(word)
            elif not skeleton or skeleton[-1] != "*":
                skeleton.append("*")
            if spots and word in SPOT_ANTECEDENTS:
                chain = [w for w, _, _ in words[position + 1 :] if w not in FUNCTION_WORDS][:SPOT_CHAIN]
                if len(chain) == SPOT_CHAIN:
                    spot_list.append(word + ":" + " ".join(chain))
        anchor_seq.extend(found)
        # A sentence boundary is a skeleton token too: it is something spinners keep.
        skeleton.append("|")
        aligned.append(Sentence(frozenset(found), len(words)))
    return SpinProfile(
        sentences=tuple(aligned),
        anchor_runs=_hash_runs(anchor_seq, ANCHOR_RUN) if anchor_runs else frozenset(),
        skeleton_runs=_hash_runs(skeleton, SKELETON_RUN),
        spots=frozenset(zlib.crc32(spot.encode()) for spot in spot_list),
    )


def _sentences_match(first: Sentence, second: Sentence) -> bool:
    """Two sentences that say the same: most anchors shared, length within a spinner's reach."""
    if not first.anchors or not second.anchors:
        return False
    shared = len(first.anchors & second.anchors)
    if shared * 2 < max(len(first.anchors), len(second.anchors)) or shared == 0:
        return False
    # A lone shared anchor (a name both mention) is not a sentence said twice unless the
    # lengths agree closely.
    ratio = min(first.words, second.words) / max(first.words, second.words, 1)
    return ratio >= (0.75 if shared == 1 else 0.55)


def aligned_share(first: Iterable[Sentence], second: Iterable[Sentence]) -> float:
    """Longest in-order alignment of anchored sentences over the shorter text's anchored ones."""
    a = [s for s in first if s.anchors]
    b = [s for s in second if s.anchors]
    if not a or not b:
        return 0.0
    # Longest common subsequence under _sentences_match: a swapped pair costs one sentence.
    # (Sentences sharing no anchor never match: tested first, without a call.)
    previous = [0] * (len(b) + 1)
    for sa in a:
        current = [0] * (len(b) + 1)
        anchors = sa.anchors
        for j, sb in enumerate(b, start=1):
            if not anchors.isdisjoint(sb.anchors) and _sentences_match(sa, sb):
                current[j] = previous[j - 1] + 1
            else:
                current[j] = max(previous[j], current[j - 1])
        previous = current
    return previous[-1] / min(len(a), len(b))


# Capitalised words not opening a sentence, and figures: the anchors, found by one pattern.
_FAST_ANCHOR = re.compile(r"(?<![.!?\"\n])(?<![.!?\"] )\b(?:[A-Z][\w'.-]+|\d[\d,.]*)")
SKETCH_SIZE = 16


def anchor_sketch(text: str, size: int = SKETCH_SIZE) -> list[int]:
    """The `size` smallest hashes of a text's anchor runs (bottom-k sketch): keys under which to
    index and look up candidate spun copies cheaply, before any profile is built."""
    found = [a.rstrip(".,'-").casefold() for a in _FAST_ANCHOR.findall(fold(text))]
    anchors = [a for a in found if a and a not in FUNCTION_WORDS]
    return sorted(_hash_runs(anchors, ANCHOR_RUN))[:size]


SKELETON_MIN = 0.2


ALIGNED_MIN = 0.55
ALIGNED_LONGER_MIN = 0.45
FEW_SENTENCES = 6
"""Below this many anchored sentences (in the text with fewer) the verdict asks more, FEW_ALIGNED_MIN,
FEW_ALIGNED_LONGER_MIN and FEW_SKELETON_MIN: in a short item two sentences said alike, or two quotes
taken verbatim by another outlet's report, are half the text."""
FEW_ALIGNED_MIN = 0.75
FEW_ALIGNED_LONGER_MIN = 0.6
FEW_SKELETON_MIN = 0.3


def is_spun_copy(scores: SpinScores, aligned_min: float = ALIGNED_MIN, skeleton_min: float = SKELETON_MIN,
                 aligned_longer_min: float = ALIGNED_LONGER_MIN) -> bool:
    """The verdict: enough sentences aligned in order, of both texts (a spinner drops a paragraph,
    not half the article), and the grammar of the text kept; more of each for short texts. (Measured
    with benchmarks/spin.py --short: 0.5 and 0.4 aligned, and no stricter rule for short texts, let
    short same-event reports and quoting items through.)"""
    if scores.sentences and scores.sentences < FEW_SENTENCES:
        aligned_min = max(aligned_min, FEW_ALIGNED_MIN)
        aligned_longer_min = max(aligned_longer_min, FEW_ALIGNED_LONGER_MIN)
        skeleton_min = max(skeleton_min, FEW_SKELETON_MIN)
    return (scores.judged and scores.aligned >= aligned_min and scores.skeleton >= skeleton_min
            and scores.aligned_longer >= aligned_longer_min)


# The spin sketch: index keys computed at prepare time for every article, cheap enough to pay on
# each one. A MinHash of SPIN_KEYS values over the text's anchor pairs (two consecutive names or
# figures, in order); each value is one index key (one-row bands). A spun copy keeps most anchors
# in order, so it shares keys with its original; candidates need SPIN_MIN_SHARED keys in common.
SPIN_KEYS = 8
SPIN_RUN = 2
SPIN_MIN_SHARED = 1
SPIN_MIN_ANCHORS = 8
"""Texts with fewer anchors get no spin keys (too few names and figures to tell a copy). (12 left
short articles without keys: their spun copies were a third of those missed, benchmarks/spin.py.)"""
_SPIN_SEED = 20261130
# A word starting with a capital or a digit, not inside a word and not opening a sentence or a
# line. The lookbehinds come after the first character, so that the scan stops only at capitals and
# digits (twice as fast as the lookbehinds first).
_SKETCH_ANCHOR = re.compile(r"[A-Z0-9](?<![\w'.,][A-Z0-9])(?<![.!?\"] [A-Z0-9])(?<!\n[A-Z0-9])[\w'.,-]*")


def _spin_permutations() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.RandomState(_SPIN_SEED)
    a = generator.randint(1, 2**32 - 1, size=SPIN_KEYS, dtype=np.uint64) | np.uint64(1)
    b = generator.randint(0, 2**32 - 1, size=SPIN_KEYS, dtype=np.uint64)
    return a, b


_SPIN_A, _SPIN_B = _spin_permutations()
_MASK32 = np.uint64(0xFFFFFFFF)


def sketch_anchors(clean_text: str) -> list[str]:
    """The anchors of a clean (folded) text in order, as the spin sketch sees them."""
    words = [raw.rstrip(".,'-").replace(",", "").lower() for raw in _SKETCH_ANCHOR.findall(clean_text)]
    return [word for word in words if word and word not in FUNCTION_WORDS]


def spin_sketch(clean_text: str) -> tuple[int, ...]:
    """SPIN_KEYS MinHash values over the anchor pairs of a clean text (empty when it has fewer than
    SPIN_MIN_ANCHORS anchors): the article's spin index keys."""
    anchors = sketch_anchors(clean_text)
    if len(anchors) < SPIN_MIN_ANCHORS:
        return ()
    pairs = {f"{first} {second}".encode() for first, second in zip(anchors, anchors[1:])}
    hashed = np.fromiter(map(zlib.crc32, pairs), dtype=np.uint64, count=len(pairs))
    with np.errstate(over="ignore"):
        values = (np.multiply.outer(_SPIN_A, hashed) + _SPIN_B[:, None]) & _MASK32
    return tuple(int(v) for v in values.min(axis=1))


def shared_keys(first: Iterable[int], second: Iterable[int]) -> int:
    """How many of two spin sketches' keys agree, position by position."""
    return sum(1 for x, y in zip(first, second, strict=False) if x == y)


SPIN_MIN_JACCARD = 0.08
"""Below this estimated Jaccard (word 4-grams, the engine's MinHash) a candidate is never profiled:
unrelated texts are about 0, stories sharing one or two sentences 0.05-0.12; the harshest spinner
measured (C with every known word swapped) puts 8% of its copies under 0.12."""
SPIN_LOW_JACCARD = 0.12
SPIN_LOW_SHARED = 3
"""Between SPIN_MIN_JACCARD and SPIN_LOW_JACCARD a candidate is profiled only when it shares
SPIN_LOW_SHARED of the SPIN_KEYS spin keys: a spun copy keeps its names and figures in order (most
of those low ones share 4 or more), a story sharing a sentence or two shares one; profiling every
candidate from 0.08 up tripled the texts profiled in benchmarks/throughput.py."""
SPIN_MAX_VERIFIED = 3
"""At most this many candidates of one article are profiled, the highest estimated Jaccard first."""


def worth_profiling(jaccard: float, shared: int, near: float) -> bool:
    """Whether a candidate under `shared` of an article's spin keys, at this estimated Jaccard, is
    profiled (a Jaccard of `near` or more is left to the ordinary rules)."""
    if jaccard >= near or jaccard < SPIN_MIN_JACCARD or shared < SPIN_MIN_SHARED:
        return False
    return jaccard >= SPIN_LOW_JACCARD or shared >= SPIN_LOW_SHARED


class SpinVerifier:
    """Judges the candidates a spin key found (the engine picks which: other sites' articles whose
    estimated Jaccard is between SPIN_MIN_JACCARD and its near threshold). Profiles are kept in a
    small LRU cache, so an article compared with several candidates is profiled once."""

    def __init__(self, near: float = 0.5, cache_size: int = 2048) -> None:
        self.near = near
        self.cache_size = cache_size
        self._profiles: OrderedDict[str, SpinProfile] = OrderedDict()
        self.profiled = 0
        """Texts profiled so far (a measure of the stage's cost)."""

    def _profile(self, key: str, text: str | Callable[[], str]) -> SpinProfile:
        found = self._profiles.get(key)
        if found is not None:
            self._profiles.move_to_end(key)
            return found
        made = profile(text if isinstance(text, str) else text(), spots=False, anchor_runs=False)
        self.profiled += 1
        self._profiles[key] = made
        if len(self._profiles) > self.cache_size:
            self._profiles.popitem(last=False)
        return made

    def verify(self, own_id: str, text: str, other_id: str, other_text: str | Callable[[], str]) -> bool:
        """Whether two texts are spun copies of each other (is_spun_copy on their profiles); a
        stored text is given as a function that reads it, called only when not cached."""
        own = self._profile(own_id, text)
        # The cheap parts of the verdict first: the other text is read and profiled only when this
        # one can be judged, and the sentence alignment is the costliest part.
        if own.anchored_sentences < MIN_ANCHORED_SENTENCES:
            return False
        other = self._profile(other_id, other_text)
        if other.anchored_sentences < MIN_ANCHORED_SENTENCES:
            return False
        if containment(own.skeleton_runs, other.skeleton_runs) < SKELETON_MIN:
            return False
        return is_spun_copy(own.compare(other))
