"""The Grafana dashboard and the alert rules against a real Prometheus scraping the
real services (design.md, Observability: "every panel's PromQL must return data
against a real Prometheus scraping a running system").

Starts the services named by --services (tests/dashboard/services.bzl, the one list),
a Prometheus scraping them every second with the chart's alert rules loaded, drives
load through them (load.py), then requires every panel query of every service started
to return at least one series with a value (not NaN), every template variable to have
values, every metric the dashboard and the rules name to have series, and every alert
rule to be loaded and evaluated without error. Panels reading cohort_<service>_*
metrics of a service not in the list are listed, not checked; so are those reading a
replicated broker group's cohort_broker_replica_* (replication_test checks them).
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cohort_services  # noqa: E402
import dashboard_queries  # noqa: E402
import load  # noqa: E402
from prometheus_server import PrometheusError, PrometheusServer  # noqa: E402

DASHBOARD = "charts/cohort/dashboards/cohort.json"
RULES = "charts/cohort/rules/cohort-alerts.yaml"
# How long a query may take to show data: scrapes, and rate() windows filling up.
DATA_TIMEOUT = 60.0

SERVICES = []  # from --services


def _has_value(series):
    return any(not math.isnan(float(s["value"][1])) for s in series)


def _poll(pending, evaluate, timeout):
    """Calls evaluate(item) for each item of `pending` until it returns True for all or
    `timeout` seconds pass. Returns {item: last failure reason} for those left."""
    failures = {}
    deadline = time.monotonic() + timeout
    while pending:
        failures = {}
        for item in pending:
            reason = evaluate(item)
            if reason is not None:
                failures[item] = reason
        pending = list(failures)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return failures


class DashboardTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dashboard-", dir=os.environ.get("TEST_TMPDIR"))
        with open(cohort_services.runfile(DASHBOARD)) as f:
            cls.dashboard = json.load(f)
        cls.services = cohort_services.start_services(SERVICES, cls.tmp)
        cls.prometheus = None
        try:
            os.mkdir(os.path.join(cls.tmp, "prometheus"))
            cls.prometheus = PrometheusServer(
                {f"cohort-{name}": [s.metrics_address] for name, s in cls.services.items()},
                [cohort_services.runfile(RULES)],
                os.path.join(cls.tmp, "prometheus"),
            )
            cls._await_targets_up()
            broker = cls.services["broker"].grpc_address
            # Twice, a scrape apart: the first round creates the series, the second
            # increases them (see load.drive_broker_and_executor_load).
            for round_number in (1, 2):
                if round_number == 2:
                    cls._await_scrape_after(time.time())
                load.drive_broker_and_executor_load(broker)
                if "scheduler" in cls.services:
                    scheduler = cls.services["scheduler"].grpc_address
                    load.drive_scheduler_load(scheduler, broker, f"dashboard-{round_number}")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus is not None:
            cls.prometheus.stop()
        cohort_services.stop_services(cls.services)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _await_targets_up(cls):
        jobs = [f"cohort-{name}" for name in cls.services]

        def down(job):
            series = cls.prometheus.query(f'up{{job="{job}"}} == 1')
            return None if series else "not scraped yet"

        left = _poll(jobs, down, DATA_TIMEOUT)
        if left:
            raise AssertionError(f"Prometheus never scraped {sorted(left)}")

    @classmethod
    def _await_scrape_after(cls, unix_time):
        """Returns once Prometheus has scraped every service after `unix_time`."""
        jobs = [f"cohort-{name}" for name in cls.services]

        def stale(job):
            series = cls.prometheus.query(f'timestamp(up{{job="{job}"}}) > {unix_time}')
            return None if series else "no scrape since"

        left = _poll(jobs, stale, DATA_TIMEOUT)
        if left:
            raise AssertionError(f"Prometheus stopped scraping {sorted(left)}")

    def test_every_panel_query_returns_data(self):
        values = dashboard_queries.variable_values(self.dashboard)
        queries = dashboard_queries.panel_queries(self.dashboard)
        self.assertGreater(len(queries), 20)
        checked = [
            q for q in queries if q.services() <= set(self.services) and not dashboard_queries.needs_replica_group(q.expr)
        ]
        for q in queries:
            if dashboard_queries.needs_replica_group(q.expr):
                print(f"checked by replication_test (a replicated group): {q.panel} [{q.ref_id}]")
            elif q not in checked:
                missing = ", ".join(sorted(q.services() - set(self.services)))
                print(f"not checked, needs {missing} in tests/dashboard/services.bzl: {q.panel} [{q.ref_id}]")
        for q in checked:
            self.assertTrue(q.services(), f"{q.panel} [{q.ref_id}] reads no cohort_ metric: {q.expr}")

        def no_data(q):
            expr = dashboard_queries.expand(q.expr, values)
            try:
                series = self.prometheus.query(expr)
            except PrometheusError as e:
                return f"rejected: {e}"
            if not series:
                return f"no series: {expr}"
            if not _has_value(series):
                return f"only NaN: {expr}"
            return None

        failures = _poll(checked, no_data, DATA_TIMEOUT)
        self.assertEqual(
            {}, {f"{q.panel} [{q.ref_id}]": reason for q, reason in failures.items()}, "panels without data"
        )
        print(f"{len(checked)} of {len(queries)} panel queries return data")

    def test_every_template_variable_has_values(self):
        queries = dashboard_queries.variable_queries(self.dashboard)
        self.assertIn("queue", queries)

        def no_values(name):
            return None if self.prometheus.query(queries[name]) else f"no values: {queries[name]}"

        self.assertEqual({}, _poll(list(queries), no_values, DATA_TIMEOUT))

    def test_every_metric_the_dashboard_and_rules_name_is_exported(self):
        exprs = [q.expr for q in dashboard_queries.panel_queries(self.dashboard)]
        exprs += list(dashboard_queries.variable_queries(self.dashboard).values())
        with open(cohort_services.runfile(RULES)) as f:
            exprs += [rule["expr"] for group in yaml.safe_load(f)["groups"] for rule in group["rules"]]
        named = set().union(*map(dashboard_queries.metric_names, exprs))
        checked = sorted(
            m
            for m in named
            if dashboard_queries.service_of(m) in self.services and not dashboard_queries.needs_replica_group(m)
        )
        self.assertGreater(len(checked), 20)

        def not_exported(metric):
            return None if metric in self.prometheus.metric_names() else "no series"

        self.assertEqual({}, _poll(checked, not_exported, DATA_TIMEOUT))

    def test_alert_rules_are_loaded_and_healthy(self):
        with open(cohort_services.runfile(RULES)) as f:
            names = {rule["alert"] for group in yaml.safe_load(f)["groups"] for rule in group["rules"]}
        self.assertGreater(len(names), 10)

        def not_evaluated(name):
            rules = {r["name"]: r for r in self.prometheus.rules()}
            if name not in rules:
                return "not loaded"
            if rules[name]["health"] != "ok":
                return f"health {rules[name]['health']}: {rules[name].get('lastError', '')}"
            return None

        self.assertEqual({}, _poll(sorted(names), not_evaluated, DATA_TIMEOUT))
        self.assertEqual(names, {r["name"] for r in self.prometheus.rules()})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", required=True, help="comma-separated, e.g. broker,executor")
    args, rest = parser.parse_known_args()
    SERVICES.extend(args.services.split(","))
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
