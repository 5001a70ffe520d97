"""The LSH index on Redis: parameters recorded in Redis, and the server-side scripts that use it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources

import redis

from dedup import signature
from dedup.keys import Keys


class IndexParamsMismatch(RuntimeError):
    """Redis holds data written with another signature scheme or index layout."""


@dataclass(frozen=True)
class IndexParams:
    """What stored signatures and band keys depend on; recorded once per key prefix."""

    format: int = 1
    scheme: str = signature.SCHEME
    num_perm: int = signature.NUM_PERM
    lead_perm: int = signature.LEAD_PERM
    seed: int = signature.SEED
    lead_seed: int = signature.LEAD_SEED
    shingle_words: int = signature.SHINGLE_WORDS
    lead_words: int = signature.LEAD_WORDS
    bands: int = 32
    rows: int = 4
    lead_bands: int = 8
    lead_rows: int = 4
    shards: int = 65536

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
    contained_jaccard: float = 0.3
    """A text almost wholly inside a larger one (a copy padded with junk, or a long excerpt)."""
    excerpt_lead: float = 0.5
    excerpt_containment: float = 0.6
    excerpt_jaccard: float = 0.1
    """An excerpt: the same opening words, mostly contained in the longer text."""
    min_shared: int = 15
    """Fewer shared shingles than this is never a copy, whatever the ratios say."""
    excerpt_ratio: float = 0.8
    """A member this much smaller than the canonical is an excerpt of it."""
    bucket_cap: int = 6
    max_candidates: int = 64
    max_merge: int = 4


def _script(name: str) -> str:
    package = resources.files("dedup") / "lua"
    return (package / "lib.lua").read_text() + "\n" + (package / f"{name}.lua").read_text()


class Scripts:
    """The registered server-side scripts; each runs atomically, in one round trip."""

    def __init__(self, client: redis.Redis) -> None:
        self.decide = client.register_script(_script("decide"))
        self.forget = client.register_script(_script("forget"))
        self.emit = client.register_script(_script("emit"))


def ensure_params(client: redis.Redis, keys: Keys, params: IndexParams) -> None:
    """Record the parameters on first use; refuse to work on data written with other ones."""
    wanted = params.as_strings()
    pipe = client.pipeline(transaction=True)
    for name, value in wanted.items():
        pipe.hsetnx(keys.params, name, value)
    pipe.hgetall(keys.params)
    stored = {k.decode(): v.decode() for k, v in pipe.execute()[-1].items()}
    different = {
        name: (stored.get(name), value) for name, value in wanted.items() if stored.get(name) != value
    }
    if different:
        detail = ", ".join(f"{name}: stored {old} vs ours {new}" for name, (old, new) in different.items())
        raise IndexParamsMismatch(
            f"Redis prefix {keys.prefix!r} holds an index built with other parameters ({detail}); "
            "use another key prefix or the same version of newsdedup"
        )
