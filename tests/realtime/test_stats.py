"""The one percentile definition (nearest rank), shared by /metrics and the load test's report."""

import pytest

from realtime.metrics import samples_summary
from realtime.stats import percentile
from tools.loadtest.stats import latency_summary


def test_percentile_is_the_nearest_rank_of_the_sorted_values():
    values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10]
    assert percentile(values, 50) == 5
    assert percentile(values, 95) == 10
    assert percentile(values, 10) == 1
    assert percentile(values, 11) == 2


def test_percentile_of_a_hundred_values_picks_the_observed_value_at_that_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100


def test_percentile_edges():
    assert percentile([], 50) is None
    assert percentile([7.5], 99) == 7.5
    assert percentile([3, 1, 2], 0) == 1
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_metrics_and_the_load_test_report_the_same_percentiles():
    seconds = [0.001 * n for n in (9, 1, 7, 3, 5, 2, 8, 4, 6, 10, 40, 12)]
    metrics = samples_summary([s * 1000 for s in seconds])
    report = latency_summary(seconds)
    assert (metrics["p50"], metrics["p95"], metrics["p99"]) == (report["p50"], report["p95"], report["p99"])
    assert (metrics["p50"], metrics["p95"], metrics["p99"]) == (6.0, 40.0, 40.0)


def test_metrics_quantiles_of_no_samples_are_none():
    assert samples_summary([]) == {"p50": None, "p95": None, "p99": None}
