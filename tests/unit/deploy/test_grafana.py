"""The Grafana dashboard in deploy/grafana uses only metrics the gateway exports."""

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.keys import OutcomeKind
from app.observability.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "gemini-gateway.json"


def test_every_dashboard_query_names_an_exported_metric() -> None:
    metrics = Metrics()
    metrics.request("openai", 200)
    metrics.duration("openai", "/chat/completions", 200, 0.1)
    metrics.upstream(OutcomeKind.OK, "gemini-2.5-flash", 0.2)
    metrics.first_token("gemini-2.5-flash", 0.3)
    metrics.affinity("hit")
    metrics.token_refused("rpm")
    metrics.unknown_route("openai")
    text = metrics.render({"active": 1}, {"published": 1, "dropped": 0},
                          [{"state": "active", "cooldowns": {}}]).decode()
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    names = {n for p in panels for t in p["targets"] for n in re.findall(r"\b(?:gateway|process)_[a-z_]+", t["expr"])}
    assert names and names <= exported, names - exported
