"""The example Prometheus alert rules (docs/examples/prometheus-alerts.yml): valid YAML in
Prometheus's rule-file shape, covering a full disk, tor not bootstrapped and failing notices,
using only metric names the metrics listener publishes, and shown verbatim in
docs/operator.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_health_metrics import example_snapshot

from sealdrop.web.metrics import create_metrics_app
from support_pages import AsgiBrowser

DOCS = Path(__file__).resolve().parents[3] / "docs"
RULES = DOCS / "examples" / "prometheus-alerts.yml"


def _published_names() -> set[str]:
    text = AsgiBrowser(create_metrics_app(example_snapshot)).get("/metrics").text
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_the_example_alert_rules_parse_and_use_only_published_metrics() -> None:
    """Every rule has an alert name, an expression and a summary; every sealdrop_* name in an
    expression is one the metrics listener publishes (a renamed metric would leave the rule
    silently matching nothing); the three alerts the operator needs are there."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    [group] = document["groups"]
    rules = group["rules"]
    published = _published_names()
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "annotations"}, rule
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\bsealdrop_[a-z_]+", rule["expr"]))
        assert used <= published, (rule["alert"], used - published)
    names = {rule["alert"] for rule in rules}
    assert {"SealdropDiskFull", "SealdropTorNotBootstrapped", "SealdropNoticesFailing"} <= names


def test_operator_md_shows_the_example_alert_rules_verbatim() -> None:
    """The rules in docs/operator.md's Monitoring section are the example file's, so that the
    two cannot drift apart."""
    operator = (DOCS / "operator.md").read_text(encoding="utf-8")
    assert RULES.read_text(encoding="utf-8").rstrip("\n") in operator
