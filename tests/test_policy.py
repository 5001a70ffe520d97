"""The decision policy without Redis (dedup.policy)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dedup import policy
from dedup import record as rec
from dedup.policy import ClusterValue, Member


def _members(rng: random.Random, n: int) -> list[Member]:
    ids = sorted({rng.randbytes(8) for _ in range(n)})
    rng.shuffle(ids)
    day = 1_770_000_000 - 1_770_000_000 % 86400
    out = []
    for article_id in ids:
        def link() -> bytes:
            roll = rng.random()
            return rng.choice(ids) if roll < 0.15 else (rng.randbytes(8) if roll < 0.2 else rec.NO_ID)
        flags = 0
        for flag, p in ((rec.PINNED, 0.02), (rec.CANONICAL_ELSEWHERE, 0.2), (rec.SYNDICATED, 0.2)):
            if rng.random() < p:
                flags |= flag
        published = rng.choice([0, day, day + 86400, day + rng.randrange(86400), day + 86400 + rng.randrange(3)])
        out.append(Member(article_id, flags, rng.choice([400, 500, 900, 1000, 1000]), published,
                          rng.choice([5, 6, 7]) + 1_770_000_000, link(), link()))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_a_large_cluster_is_elected_as_a_small_one_would_be(seed: int) -> None:
    rng = random.Random(seed)
    members = _members(rng, rng.choice([2, 3, 5, 24, 25, 60, 300]))
    by_loop = policy._choose_canonical_small(members, 0.8)
    table = b"".join(policy.pack_member(m) for m in members)
    by_arrays = policy._choose_canonical_array(np.frombuffer(table, dtype=policy._MEMBER_DTYPE), 0.8)
    assert by_loop == by_arrays == policy.choose_in_table(table, 0.8)


def test_cluster_values_round_trip() -> None:
    members = _members(random.Random(1), 30)
    value = ClusterValue.of(members[3].id, policy.REASON_EARLIEST, members)
    raw = value.pack()
    parsed = ClusterValue.parse(raw)
    assert parsed.canonical == members[3].id and parsed.reason == policy.REASON_EARLIEST
    assert [(m.id, m.flags, m.n_shingles, m.published, m.arrived, m.canonical_link, m.source_link)
            for m in parsed.members] == [(m.id, m.flags, m.n_shingles, m.published, m.arrived, m.canonical_link,
                                          m.source_link) for m in members]
    assert ClusterValue.member_ids(raw) == [m.id for m in members]


def test_the_policy_ranks_an_override_then_links_then_completeness_then_dates() -> None:
    day = 1_770_000_000 - 1_770_000_000 % 86400
    a = Member(b"\x01" * 8, 0, 1000, day + 3600, 10, rec.NO_ID, rec.NO_ID)
    b = Member(b"\x02" * 8, 0, 1000, day + 7200, 5, a.id, rec.NO_ID)
    c = Member(b"\x03" * 8, 0, 500, day, 1, rec.NO_ID, rec.NO_ID)
    assert policy.choose_canonical([b, c], 0.8) == (0, policy.REASON_COMPLETE)
    assert policy.choose_canonical([a, b], 0.8) == (0, policy.REASON_NAMED)
    c.flags = rec.PINNED
    assert policy.choose_canonical([a, b, c], 0.8) == (2, policy.REASON_OVERRIDE)
    # A date-only publication (midnight) is no evidence against a timestamp later that day.
    midnight = Member(b"\x04" * 8, 0, 1000, day, 1, rec.NO_ID, rec.NO_ID)
    assert policy.choose_canonical([midnight, a], 0.8) == (1, policy.REASON_EARLIEST)
    assert policy.choose_canonical([a], 0.8) == (0, policy.REASON_SINGLE)


@pytest.mark.parametrize("size", [2, 3, 40])  # member by member, and with array operations
def test_a_tie_stays_with_the_member_decided_first_whatever_the_ids(size: int) -> None:
    # Undated pages that arrived in the same second: every criterion ties. The member listed first in
    # the cluster (decided first) stays canonical, not the one with the smallest id, so the outcome
    # does not depend on where the second boundaries fell between two runs (or two servers).
    members = [Member(bytes([0xF0 - i]) * 8, 0, 1000, 0, 1_700_000_000, rec.NO_ID, rec.NO_ID)
               for i in range(size)]
    assert min(m.id for m in members) != members[0].id
    best, reason = policy.choose_canonical(members, 0.6)
    assert best == 0 and reason == policy.REASON_ARRIVAL
    table = b"".join(policy.pack_member(m) for m in members)
    assert policy.choose_in_table(table, 0.6)[0] == 0
    # An earlier arrival still wins.
    members[-1] = Member(members[-1].id, 0, 1000, 0, 1_699_999_999, rec.NO_ID, rec.NO_ID)
    assert policy.choose_canonical(members, 0.6)[0] == size - 1
