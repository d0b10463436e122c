"""The PromQL of a Grafana dashboard, as Prometheus would receive it from Grafana.

Grafana expands variables before it sends a query; these helpers do the same for the
variables Cohort's dashboard uses, so that a test can evaluate every panel against a
real Prometheus: `$__rate_interval` becomes RATE_INTERVAL and a multi-value query
variable its "All" value (its allValue, or ".*"). A `$` left after expansion is an
unknown variable and an error.
"""

import re
from dataclasses import dataclass

# What $__rate_interval stands for: longer than the whole test, so a rate() or a
# histogram_quantile() shows what the load did whenever it is evaluated.
RATE_INTERVAL = "5m"
# Other built-in time variables, should a panel use them.
_BUILTINS = {"__rate_interval": RATE_INTERVAL, "__interval": "5s", "__range": "5m"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_SERVICE = re.compile(r"\bcohort_([a-z]+)_\w+")
_METRIC = re.compile(r"\bcohort_[a-z]+_\w+")
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")
# Metrics only a replicated broker group exports (services/broker/replica_metrics.h).
_REPLICA_METRIC = re.compile(r"\bcohort_broker_replica_\w+")


def metric_names(expr):
    """The cohort_* metric names that `expr` reads."""
    return set(_METRIC.findall(expr))


def needs_replica_group(expr):
    """Whether `expr` reads metrics only a replicated broker group exports
    (cohort_broker_replica_*): //tests/dashboard:replication_test checks those."""
    return bool(_REPLICA_METRIC.search(expr))


def service_of(metric):
    """"broker" for cohort_broker_*."""
    return _SERVICE.match(metric).group(1)


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    panel: str
    ref_id: str
    expr: str  # as written in the dashboard, variables unexpanded

    def services(self):
        """The services whose metrics the query reads ("broker" for cohort_broker_*)."""
        return set(_SERVICE.findall(self.expr))


def _panels(panels):
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels", []))  # a collapsed row nests its panels
        else:
            yield panel


def panel_queries(dashboard):
    """Every target of every panel, rows included, in dashboard order."""
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"])
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def variable_values(dashboard):
    """{name: value} for each template variable a query may use: "All" for a query
    variable that includes it, else its current value."""
    values = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "datasource":
            continue
        if var.get("includeAll"):
            values[var["name"]] = var.get("allValue") or ".*"
        else:
            current = var["current"]["value"]
            values[var["name"]] = current[0] if isinstance(current, list) else current
    return values


def variable_queries(dashboard):
    """{name: PromQL} for each query variable: label_values(selector, label) as the
    instant query that lists the same values (count by (label) (selector))."""
    queries = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query.strip())
        if not match:
            raise ValueError(f"variable {var['name']}: only label_values(selector, label) is supported: {query}")
        queries[var["name"]] = f"count by ({match.group(2)}) ({match.group(1)})"
    return queries


def expand(expr, values):
    """`expr` with every $var, ${var} and ${var:format} replaced; raises ValueError
    naming a variable that is neither a built-in nor in `values`."""

    def replace(match):
        name = match.group(1) or match.group(2)
        if name in _BUILTINS:
            return _BUILTINS[name]
        if name in values:
            return values[name]
        raise ValueError(f"unknown variable ${name} in {expr}")

    return _VARIABLE.sub(replace, expr)
