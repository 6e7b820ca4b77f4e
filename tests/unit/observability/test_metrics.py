"""The Prometheus registry's per-model series stay bounded whatever model names clients send."""

from __future__ import annotations

from prometheus_client import generate_latest

from app.keys import OutcomeKind
from app.observability.metrics import MAX_MODELS, Metrics


def test_distinct_model_names_cannot_grow_the_metrics_without_bound() -> None:
    metrics = Metrics()
    for i in range(100_000):
        metrics.upstream(OutcomeKind.CLIENT_ERROR, f"bogus-{i}", 0.01)
        metrics.first_token(f"bogus-{i}", 0.2)
    assert len(metrics._upstream_duration_children) <= MAX_MODELS + 1
    assert len(metrics._ttft_children) <= MAX_MODELS + 1
    text = generate_latest(metrics.registry).decode()
    assert 'model="other"' in text and 'model="bogus-99999"' not in text
