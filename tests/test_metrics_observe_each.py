"""core.metrics.observe_each, the per-call batch that bots/llm/observed.py records a stream's chunk gaps with:
the exported histogram is the one an observe per value gives."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from core.metrics import observe_each

BUCKETS = (0.01, 0.025, 0.05, 0.1, 1.0)
# On a bound, between bounds, below the first, past the last (+Inf), and repeated.
VALUES = [0.01, 0.025, 0.0101, 0.005, 0.0, 0.07, 0.1, 0.1, 0.99, 1.0, 1.5, 30.0, 0.03]


def exported(values: list[float], *, batch: bool) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    gaps = Histogram("gaps_seconds", "Gaps.", ["surface"], buckets=BUCKETS, registry=registry).labels("001")
    if batch:
        observe_each(gaps, values)
    else:
        for value in values:
            gaps.observe(value)
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_batch_of_values_exports_the_same_histogram_as_one_observe_each():
    batched = exported(VALUES, batch=True)
    assert batched == exported(VALUES, batch=False)
    assert batched[("gaps_seconds_count", "")] == len(VALUES)
    assert batched[("gaps_seconds_bucket", "0.01")] == 3  # 0.01 itself, 0.005 and 0.0
    assert batched[("gaps_seconds_bucket", "+Inf")] == len(VALUES)
    assert batched[("gaps_seconds_bucket", "1.0")] == len(VALUES) - 2  # not 1.5 and 30.0


def test_an_empty_batch_counts_nothing():
    assert exported([], batch=True) == exported([], batch=False)
    assert exported([], batch=True)[("gaps_seconds_count", "")] == 0
