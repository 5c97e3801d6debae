"""The plan: how often each scenario is planted, and the chunks built from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from almatools.sandbox.generator import duplicates, lookalikes, problems
from almatools.sandbox.generator.chunk import Chunk
from almatools.sandbox.generator.people import GROUP_WEIGHTS

BATCH_SIZE = 5_000
"""Records per chunk and per ``sink`` call."""
MAX_USERS = 5_000_000

Scenario = Callable[[Chunk], None]
"""A planted scenario: adds its records, SIS-only records and ground-truth rows to the chunk."""

# Rate of each planted scenario per 1,000 records (at 5,000 records every rule gets 8+ cases). About 2%
# of people have a second account (real registries hold 2-4%), 0.4% a look-alike of another person.
# The order is part of the output: each chunk plants the scenarios in this order from its one stream.
PLAN: tuple[tuple[Scenario, float], ...] = (
    (duplicates.local_twice, 6.0), (duplicates.local_twice_id_format, 0.6), (duplicates.alum_old_sis, 3.5),
    (duplicates.sis_and_local, 4.0), (duplicates.readmitted, 2.0), (duplicates.local_three, 1.0),
    (lookalikes.same_name, 1.2), (lookalikes.twins, 0.8), (lookalikes.parent_child, 0.6),
    (lookalikes.spouses, 0.8), (lookalikes.family_email, 0.6),
    (problems.sis_local_other_id, 1.6), (problems.sis_local_same_id, 2.4), (problems.stale, 5.0),
    (problems.expired_active, 3.0), (problems.no_purge, 2.4), (problems.purge_passed, 2.4),
    (problems.purge_too_soon, 2.4), (problems.missing_field, 3.0), (problems.profile_missing, 2.0),
    (problems.profile_unknown, 2.0), (problems.local_in_sis_group, 2.4), (problems.id_collision, 2.0),
    (problems.multi_preferred, 2.4), (problems.bad_email, 2.4), (problems.bad_id_format, 2.0),
    (problems.sis_new, 10.0),
)


def build(chunk: Chunk) -> None:
    """Plant :data:`PLAN`'s scenarios in ``chunk``, fill it up with clean records, and shuffle them."""
    rng = chunk.rng
    for scenario, per_1000 in PLAN:
        exact = per_1000 * chunk.size / 1000
        n = int(exact) + (rng.random() < exact - int(exact))
        for _ in range(n):
            before = len(chunk.alma), len(chunk.rows), len(chunk.sis_only)
            scenario(chunk)
            if len(chunk.alma) > chunk.size:  # a tiny institution: drop what does not fit
                del chunk.alma[before[0]:], chunk.rows[before[1]:], chunk.sis_only[before[2]:]
                break
    groups = list(GROUP_WEIGHTS)
    weights = list(GROUP_WEIGHTS.values())
    for group in rng.choices(groups, weights, k=chunk.size - len(chunk.alma)):
        chunk.add(chunk.clean(group))
    rng.shuffle(chunk.alma)
    rng.shuffle(chunk.sis_only)


def chunks(users: int, seed: int, today: date) -> Iterator[Chunk]:
    """The institution's chunks of :data:`BATCH_SIZE` records, built one at a time (memory stays flat)."""
    if not 0 <= users <= MAX_USERS:
        raise ValueError(f"users must be between 0 and {MAX_USERS:,}, not {users}")
    n_chunks = -(-users // BATCH_SIZE)
    for k in range(n_chunks):
        chunk = Chunk(k, min(BATCH_SIZE, users - k * BATCH_SIZE), seed, today, n_chunks)
        build(chunk)
        yield chunk
