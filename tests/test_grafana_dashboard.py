"""docs/grafana/bytchat-dashboard.json: an importable Grafana dashboard whose every query reads a sample the
server exports (derived from core/metrics.py's metric objects and a real scrape of /metrics), grouped only by
Bytchat's labels, with histograms charted as quantiles of rates summed by `le`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.metrics import LABELS

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "bytchat-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Prometheus adds these to every sample it scrapes: a dashboard may filter on them, never group by them.
TARGET_LABELS = {"job", "instance"}
RANGE_FUNCTIONS = {"rate", "irate", "increase"}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum", "hour", "idelta",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "resets",
    "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    *RANGE_FUNCTIONS, *AGGREGATIONS,
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
LABEL_CLAUSES = {"by", "without", "on", "ignoring", "group_left", "group_right"}
MATCH_OPS = {"=", "!=", "=~", "!~"}

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<variable>\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\])
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
    |(?P<ident>[A-Za-z_:][\w:]*)
    |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])""",
    re.VERBOSE,
)


@dataclass
class Query:
    """What one PromQL expression reads: each metric with the function around it, the labels it groups
    by and filters on, and any mistake the reader found."""

    metrics: list[tuple[str, str | None, tuple[str, ...]]] = field(default_factory=list)
    grouped_by: set[str] = field(default_factory=set)
    matched: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read {expr[position : position + 20]!r} in {expr!r}")
        if match.lastgroup != "space":
            out.append((match.lastgroup, match.group()))
        position = match.end()
    return out


def read_promql(expr: str) -> Query:
    query = Query()
    tokens = _tokens(expr)
    stack: list[tuple[str, str]] = []  # ("call", function) | ("labels", clause) | ("group", "")
    in_braces = in_brackets = False
    pending_call = pending_clause = None
    for index, (kind, text) in enumerate(tokens):
        after = tokens[index + 1][1] if index + 1 < len(tokens) else None
        if in_braces:
            if kind == "ident" and after in MATCH_OPS:
                query.matched.add(text)
            in_braces = text != "}"
            continue
        if in_brackets:
            in_brackets = text != "]"
            continue
        if stack and stack[-1][0] == "labels":
            if kind == "ident":
                if stack[-1][1] in ("by", "without"):
                    query.grouped_by.add(text)
            elif text == ")":
                stack.pop()
            elif text != ",":
                query.problems.append(f"unexpected {text!r} in a label list")
            continue
        if text == "{":
            in_braces = True
        elif text == "[":
            in_brackets = True
        elif kind == "ident" and text in LABEL_CLAUSES:
            if after == "(":  # group_left and group_right may come without a list
                pending_clause = text
        elif kind == "ident" and text in AGGREGATIONS and after in LABEL_CLAUSES:
            pending_call = text  # `sum by (le) (...)`: the call's parenthesis comes after the labels
        elif kind == "ident" and after == "(":
            if text not in FUNCTIONS:
                query.problems.append(f"unknown function {text}()")
            pending_call = text
        elif kind == "ident" and text not in AGGREGATIONS and text not in KEYWORDS:
            calls = tuple(name for what, name in reversed(stack) if what == "call")
            query.metrics.append((text, calls[0] if calls else None, calls))
        elif text == "(":
            if pending_clause:
                stack.append(("labels", pending_clause))
                pending_clause = None
            elif pending_call:
                stack.append(("call", pending_call))
                pending_call = None
            else:
                stack.append(("group", ""))
        elif text == ")":
            if not stack:
                query.problems.append("unbalanced )")
            else:
                stack.pop()
    if stack or in_braces or in_brackets:
        query.problems.append("unclosed (, { or [")
    return query


def _sample_names(name: str, kind: str) -> dict[str, str]:
    """The sample names a family of this type exports, each with what it is (multiprocess mode exports no
    `_created`, so a dashboard must not read it)."""
    if kind == "histogram":
        return {f"{name}_bucket": "bucket", f"{name}_sum": "counter", f"{name}_count": "counter"}
    if kind == "counter":
        return {f"{name}_total": "counter"}
    if kind == "summary":
        return {f"{name}_sum": "counter", f"{name}_count": "counter"}
    return {name: "gauge"}


@pytest.fixture
def exported(db, client, settings) -> dict[str, str]:
    """Every sample name the server exports, and what it is: from each metric object in core/metrics.py, and
    from a real scrape of /metrics for the families read at scrape time (the ingestion figures)."""
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    names: dict[str, str] = {}
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                names |= _sample_names(family.name, family.type)
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200, response.content
    for family in text_string_to_metric_families(response.content.decode()):
        if not family.name.endswith("_created"):  # a single process's counter timestamps, not multiprocess mode's
            names |= _sample_names(family.name, family.type)
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def queries() -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) of every panel target and every query variable (label_values' selector)."""
    out = [
        (f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"], target.get("legendFormat", ""))
        for panel in panels()
        for target in panel["targets"]
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            text = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text)
            assert match, f"variable {variable['name']}: {text!r} is not label_values(selector, label)"
            out.append((f"variable {variable['name']}", f"group by ({match.group(2)}) ({match.group(1)})", ""))
    return out


def test_the_query_reader_finds_metrics_labels_functions_and_mistakes():
    query = read_promql(
        'histogram_quantile(0.95, sum by (le, mode) (rate(bytchat_x_bucket{job=~"$job", a="}"}[$__rate_interval])))'
        " / on (mode) group_left sum by (mode) (bytchat_y{b!=''} offset 5m)"
    )
    assert query.metrics == [
        ("bytchat_x_bucket", "rate", ("rate", "sum", "histogram_quantile")),
        ("bytchat_y", "sum", ("sum",)),
    ]
    assert query.grouped_by == {"le", "mode"}
    assert query.matched == {"job", "a", "b"}
    assert query.problems == []
    assert read_promql("sum(ratee(x[5m])").problems == ["unknown function ratee()", "unclosed (, { or ["]


def test_the_dashboard_is_an_importable_grafana_dashboard_on_a_prometheus_variable():
    board = dashboard()
    assert board["title"] and board["uid"] and board["schemaVersion"] >= 36
    assert board["id"] is None  # Grafana gives an imported dashboard its own id
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    ids = [panel["id"] for panel in board["panels"]]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids))
    assert {panel["title"] for panel in board["panels"] if panel["type"] == "row"} >= {
        "Model calls", "Runs", "Limits", "Retrieval and web search", "Ingestion", "Exams", "HTTP",
    }  # fmt: skip
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    # Panels fit the 24-column grid and none covers another.
    boxes = [(panel["title"], panel["gridPos"]) for panel in board["panels"]]
    for title, box in boxes:
        assert box["w"] > 0 and box["h"] > 0 and box["x"] >= 0 and box["x"] + box["w"] <= 24, title
    for index, (title, a) in enumerate(boxes):
        for other, b in boxes[index + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )  # fmt: skip
            assert apart, f"{title!r} overlaps {other!r}"


def test_every_metric_the_dashboard_queries_is_one_the_server_exports(exported):
    read = [(where, read_promql(expr)) for where, expr, _legend in queries()]
    assert [(where, query.problems) for where, query in read if query.problems] == []
    unknown = [(where, name) for where, query in read for name, _call, _calls in query.metrics if name not in exported]
    assert unknown == []
    queried = {name for _where, query in read for name, _call, _calls in query.metrics}
    # Both sources count: a family defined in core/metrics.py and one only a scrape shows.
    assert {"gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "bytchat_ingestion_queue_depth"} <= queried


def test_the_dashboard_groups_and_filters_only_by_bytchat_s_labels_and_its_legends_name_them():
    for where, expr, legend in queries():
        query = read_promql(expr)
        # A variable may list the jobs Prometheus scrapes; a panel never splits by target.
        variable = TARGET_LABELS if where.startswith("variable") else set()
        assert query.grouped_by <= LABELS | {"le"} | variable, (where, query.grouped_by)
        assert query.matched <= LABELS | {"le"} | TARGET_LABELS, (where, query.matched)
        # A legend can only show a label the query keeps (a by label): anything else prints empty.
        shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert shown <= query.grouped_by - {"le"}, (where, legend)


def test_histograms_are_quantiles_of_rates_summed_by_le_counters_are_rates_and_gauges_are_not(exported):
    for where, expr, _legend in queries():
        if where.startswith("variable"):
            continue
        query = read_promql(expr)
        for name, call, calls in query.metrics:
            kind = exported.get(name)
            if kind in ("bucket", "counter"):
                assert call in RANGE_FUNCTIONS, f"{where}: {name} is a counter, chart its rate"
            if kind == "bucket":
                assert "histogram_quantile" in calls, f"{where}: {name} outside histogram_quantile()"
                assert "le" in query.grouped_by, f"{where}: histogram_quantile needs sum by (le, ...)"
            if kind == "gauge":
                assert call not in RANGE_FUNCTIONS, f"{where}: {name} is a gauge, not a counter"


def test_every_bytchat_metric_has_a_panel(exported):
    """A metric added to core/metrics.py (or read at scrape time) and left off the dashboard fails here."""
    families = {
        family.name
        for collector in vars(metrics).values()
        if isinstance(collector, MetricWrapperBase)
        for family in collector.describe()
    } | {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in exported if name.startswith("bytchat_")}
    charted = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for where, expr, _legend in queries()
        if not where.startswith("variable")
        for name, _call, _calls in read_promql(expr).metrics
    }
    assert sorted(families - charted) == []
