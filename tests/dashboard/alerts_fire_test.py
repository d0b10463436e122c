"""The alerts on the age of the oldest queued job and on the scheduler's watch lag fire
against a real Prometheus scraping the real services (issue 11, item 13: both once
read gauges that stood still in exactly the situation they alert on).

Each test loads the shipped rule with its expression unchanged but for the threshold at
its end, and `for: 0s`, so it fires within seconds rather than minutes: the test proves
the expression moves with time, not the choice of threshold. It first checks the
alert is not firing while all is well, then waits (bounded) for it to fire.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cohort_services  # noqa: E402
import load  # noqa: E402
from prometheus_server import PrometheusServer  # noqa: E402
from protos.cohort.v1 import broker_pb2, broker_pb2_grpc, job_pb2  # noqa: E402

RULES = "charts/cohort/rules/cohort-alerts.yaml"
# How long an alert may take to fire once its threshold is crossed: scrapes every
# second, evaluation every second; generous for a loaded machine.
FIRE_TIMEOUT = 60.0


def fast_rule_file(path, alert, threshold):
    """Writes to `path` the shipped rule `alert`, its expression's final `> N` replaced
    by `> threshold` and its `for` by 0s. Returns the expression written."""
    with open(cohort_services.runfile(RULES)) as f:
        groups = yaml.safe_load(f)["groups"]
    [rule] = [r for g in groups for r in g["rules"] if r.get("alert") == alert]
    head, sep, tail = rule["expr"].strip().rpartition("> ")
    if not sep or not tail.strip().isdigit():
        raise AssertionError(f"{alert}: expression does not end in a '> N' threshold: {rule['expr']}")
    rule = dict(rule, expr=f"{head}> {threshold}")
    rule["for"] = "0s"
    with open(path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "fast", "rules": [rule]}]}, f)
    return rule["expr"]


class AlertFires(unittest.TestCase):
    SERVICES = ()
    ALERT = None
    THRESHOLD = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="alerts-", dir=os.environ.get("TEST_TMPDIR"))
        self.services = {}
        self.prometheus = None
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.services = cohort_services.start_services(list(self.SERVICES), self.tmp)
        self.addCleanup(cohort_services.stop_services, self.services)
        rules = os.path.join(self.tmp, "rules.yaml")
        self.expr = fast_rule_file(rules, self.ALERT, self.THRESHOLD)
        os.mkdir(os.path.join(self.tmp, "prometheus"))
        self.prometheus = PrometheusServer(
            {f"cohort-{name}": [s.metrics_address] for name, s in self.services.items()},
            [rules],
            os.path.join(self.tmp, "prometheus"),
        )
        self.addCleanup(self.prometheus.stop)
        for name in self.services:
            load._await(
                lambda: self.prometheus.query(f'up{{job="cohort-{name}"}} == 1'),
                f"Prometheus to scrape cohort-{name}",
                FIRE_TIMEOUT,
            )

    def state(self):
        """The alert's state: 'firing', 'pending' or None (inactive)."""
        states = [a["state"] for a in self.prometheus.alerts() if a["labels"].get("alertname") == self.ALERT]
        return "firing" if "firing" in states else (states[0] if states else None)

    def await_value(self, what, predicate):
        """Waits (bounded) until the alert's expression, without its threshold, has a
        series whose value satisfies `predicate`."""
        unthresholded = self.expr.rpartition("> ")[0]
        load._await(
            lambda: any(predicate(float(s["value"][1])) for s in self.prometheus.query(unthresholded)),
            what,
            FIRE_TIMEOUT,
        )

    def await_firing(self):
        load._await(lambda: self.state() == "firing", f"{self.ALERT} to fire ({self.expr})", FIRE_TIMEOUT)


class OldestQueuedJobAlertTest(AlertFires):
    SERVICES = ("broker",)  # no executor: a queued job stays queued
    ALERT = "CohortOldestQueuedJobOld"
    THRESHOLD = 10

    def test_a_job_that_stays_queued_fires_the_alert_though_its_queue_never_changes(self):
        broker = broker_pb2_grpc.BrokerStub(load.channel(self.services["broker"].grpc_address))
        broker.Submit(
            broker_pb2.SubmitRequest(jobs=[job_pb2.JobSpec(queue="alerts.stuck", kind="builtin.noop")]),
            timeout=30,
        )
        # Scraped and young: the alert is not firing yet.
        self.await_value("the queued job's age to be scraped", lambda age: age < self.THRESHOLD)
        self.assertNotEqual(self.state(), "firing")
        # Nothing changes in the broker from here on; only time passes.
        self.await_firing()
        [alert] = [a for a in self.prometheus.alerts() if a["labels"]["alertname"] == self.ALERT]
        self.assertEqual(alert["labels"]["queue"], "alerts.stuck")
        self.assertGreater(float(alert["value"]), self.THRESHOLD)


class SchedulerWatchLagAlertTest(AlertFires):
    SERVICES = ("broker", "scheduler")
    ALERT = "CohortSchedulerWatchLag"
    # Above the scheduler's quiet-Watch probe interval (5 s) plus a scrape.
    THRESHOLD = 12

    def test_the_watch_lag_alert_fires_while_the_broker_is_down(self):
        # In step with a live broker: the lag stays under the probe interval and a scrape.
        self.await_value("the scheduler's lag to be scraped", lambda lag: lag < self.THRESHOLD)
        started = time.monotonic()
        self.assertNotEqual(self.state(), "firing")
        self.services.pop("broker").stop()
        self.await_firing()
        self.assertGreaterEqual(time.monotonic() - started, self.THRESHOLD - 6)


if __name__ == "__main__":
    unittest.main(verbosity=2)
