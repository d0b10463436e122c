"""The Helm chart (charts/cohort), checked with a real Helm (tools/install_helm.sh),
promtool and the real service binaries:

- `helm lint --strict` and `helm template` of the defaults and of every
  charts/cohort/ci/*-values.yaml scenario; the rendered objects are what the chart
  promises (StatefulSets with volume claims for broker and scheduler, one replica each;
  an executor Deployment whose grace period outlasts its drain; gRPC probes; metrics
  ports, annotations, ServiceMonitor and PrometheusRule; the dashboard ConfigMap);
- every rendered container's arguments start the real binary (addresses and data dirs
  overridden to 127.0.0.1:0 and a temp dir), for the services of
  tests/dashboard/services.bzl;
- the alert rules pass `promtool check rules` and the unit tests of alerts_test.yaml;
- the dashboard's structure (datasource variable, ids, grid, queries).

Not checked here: the objects against a Kubernetes API server's schema (no cluster),
and the PromQL and metric names against data (//tests/dashboard:dashboard_test).
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard"))

import cohort_services  # noqa: E402

HELM = "/usr/local/bin/helm"
PROMTOOL = "/usr/bin/promtool"
SERVICES = []  # from --services
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# values.yaml keys under these are Kubernetes objects, documented by their parent.
FREE_FORM_KEYS = {"resources", "podSecurityContext", "securityContext", "labels", "seccompProfile", "capabilities"}


def _run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


class ChartTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(HELM, os.X_OK):
            raise AssertionError(f"{HELM} is missing: run tools/setup.sh (it runs tools/install_helm.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="chart-", dir=os.environ.get("TEST_TMPDIR"))
        # A copy with the runfiles' symlinks resolved: Helm loads plain files.
        cls.chart = os.path.join(cls.tmp, "cohort")
        shutil.copytree(cohort_services.runfile("charts/cohort"), cls.chart)
        cls.scenarios = [None] + sorted(glob.glob(os.path.join(cls.chart, "ci", "*-values.yaml")))
        cls.rendered = {s: cls.render(s) for s in cls.scenarios}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def helm_template(cls, values=None, sets=()):
        argv = [HELM, "template", "rel", cls.chart, "--namespace", "jobs"]
        if values:
            argv += ["-f", values]
        for s in sets:
            argv += ["--set", s]
        return _run(argv)

    @classmethod
    def render(cls, values=None, sets=()):
        result = cls.helm_template(values, sets)
        if result.returncode != 0:
            raise AssertionError(f"helm template {values or 'defaults'}: {result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    @staticmethod
    def find(objects, kind, name_suffix):
        found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
        if len(found) != 1:
            raise AssertionError(f"expected one {kind} named *{name_suffix}, found {len(found)}")
        return found[0]

    @staticmethod
    def container(workload):
        containers = workload["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, containers
        return containers[0]

    @staticmethod
    def flags(container):
        return dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in container["args"])

    # --- helm ------------------------------------------------------------------

    def test_lint_passes_for_defaults_and_every_scenario(self):
        self.assertGreaterEqual(len(self.scenarios), 4)
        for values in self.scenarios:
            argv = [HELM, "lint", "--strict", self.chart] + (["-f", values] if values else [])
            result = _run(argv)
            self.assertEqual(0, result.returncode, f"{' '.join(argv)}\n{result.stdout}{result.stderr}")

    def test_renders_the_components_of_every_scenario(self):
        for values, objects in self.rendered.items():
            with self.subTest(values=values):
                for kind, suffix in [
                    ("StatefulSet", "-broker"),
                    ("StatefulSet", "-scheduler"),
                    ("Deployment", "-executor"),
                    ("Service", "-broker"),
                    ("Service", "-broker-headless"),
                    ("Service", "-scheduler"),
                    ("Service", "-scheduler-headless"),
                    ("Service", "-executor-metrics"),
                ]:
                    self.find(objects, kind, suffix)

    def test_broker_and_scheduler_are_single_stateful_replicas_with_their_own_volume(self):
        for values, objects in self.rendered.items():
            for name, port in [("broker", 7070), ("scheduler", 7071)]:
                with self.subTest(values=values, component=name):
                    sts = self.find(objects, "StatefulSet", f"-{name}")
                    self.assertEqual(1, sts["spec"]["replicas"])
                    self.assertEqual(sts["metadata"]["name"] + "-headless", sts["spec"]["serviceName"])
                    c = self.container(sts)
                    self.assertEqual([f"/usr/local/bin/cohort-{name}"], c["command"])
                    flags = self.flags(c)
                    self.assertEqual(f"0.0.0.0:{port}", flags["listen"])
                    mount = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["data"]
                    self.assertTrue(flags["data-dir"].startswith(mount + "/"), (flags["data-dir"], mount))
                    claims = sts["spec"].get("volumeClaimTemplates", [])
                    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
                    if values and values.endswith("ephemeral-values.yaml"):
                        self.assertEqual([], claims)
                        self.assertIn("emptyDir", volumes["data"])
                    else:
                        self.assertEqual(["data"], [claim["metadata"]["name"] for claim in claims])
                        self.assertNotIn("data", volumes)
                        self.assertRegex(claims[0]["spec"]["resources"]["requests"]["storage"], r"^\d+[GM]i$")
                    if name == "scheduler":
                        self.assertTrue(flags["broker"].endswith("-broker:7070"), flags)
        # No values knob makes a second scheduler.
        objects = self.render(sets=["scheduler.replicas=3"])
        self.assertEqual(1, self.find(objects, "StatefulSet", "-scheduler")["spec"]["replicas"])

    def test_executor_grace_period_outlasts_its_drain(self):
        for values, objects in self.rendered.items():
            with self.subTest(values=values):
                deployment = self.find(objects, "Deployment", "-executor")
                flags = self.flags(self.container(deployment))
                drain = int(flags["drain-grace"].rstrip("s")) + int(flags["kill-grace"].rstrip("s"))
                self.assertGreater(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], drain)
                self.assertEqual("$(POD_NAME)", flags["executor-id"])
        result = self.helm_template(sets=["executor.terminationGracePeriodSeconds=35"])
        self.assertNotEqual(0, result.returncode)
        self.assertIn("must exceed executor.drainGraceSeconds + executor.killGraceSeconds (35)", result.stderr)

    def test_executor_flags_follow_the_values(self):
        objects = self.rendered[self.scenario("exec")]
        c = self.container(self.find(objects, "Deployment", "-executor"))
        self.assertIn("--allow-exec=/usr/bin/true", c["args"])
        self.assertIn("--allow-exec=/opt/jobs/*", c["args"])
        self.assertIn("--queues=default,reports", c["args"])
        self.assertIn("--inherit-env", c["args"])
        self.assertIn("--capacity=16", c["args"])
        self.assertIn("--max-output-bytes=1048576", c["args"])  # an integer, not 1.048576e+06

    def test_probes_are_grpc_health_checks_on_the_grpc_port(self):
        for values, objects in self.rendered.items():
            for kind, suffix, port_name in [
                ("StatefulSet", "-broker", "grpc"),
                ("StatefulSet", "-scheduler", "grpc"),
                ("Deployment", "-executor", "health"),
            ]:
                with self.subTest(values=values, workload=suffix):
                    c = self.container(self.find(objects, kind, suffix))
                    port = {p["name"]: p["containerPort"] for p in c["ports"]}[port_name]
                    self.assertEqual(f"0.0.0.0:{port}", self.flags(c)["listen"])
                    for probe in ("readinessProbe", "livenessProbe"):
                        self.assertEqual({"port": port}, c[probe]["grpc"], probe)

    def test_metrics_ports_annotations_and_services_agree(self):
        for values, objects in self.rendered.items():
            for kind, suffix, port, service in [
                ("StatefulSet", "-broker", 9470, "-broker"),
                ("StatefulSet", "-scheduler", 9471, "-scheduler"),
                ("Deployment", "-executor", 9472, "-executor-metrics"),
            ]:
                with self.subTest(values=values, workload=suffix):
                    workload = self.find(objects, kind, suffix)
                    c = self.container(workload)
                    self.assertEqual(port, {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"])
                    self.assertEqual(f"0.0.0.0:{port}", self.flags(c)["metrics-listen"])
                    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
                    if values and values.endswith("ephemeral-values.yaml"):
                        self.assertNotIn("prometheus.io/scrape", annotations)
                    else:
                        self.assertEqual("true", annotations["prometheus.io/scrape"])
                        self.assertEqual(str(port), annotations["prometheus.io/port"])
                        self.assertEqual("/metrics", annotations["prometheus.io/path"])
                    svc = self.find(objects, "Service", service)
                    self.assertIn({"name": "metrics", "port": port, "targetPort": "metrics"}, svc["spec"]["ports"])
                    selector = svc["spec"]["selector"]
                    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
                    self.assertEqual(selector, {k: pod_labels[k] for k in selector})

    def test_service_monitor_names_the_jobs_the_alert_rules_expect(self):
        objects = self.rendered[self.scenario("monitoring")]
        monitor = self.find(objects, "ServiceMonitor", "")
        self.assertEqual("kube-prometheus-stack", monitor["metadata"]["labels"]["release"])
        selector = monitor["spec"]["selector"]["matchLabels"]
        scraped = [
            o for o in objects if o["kind"] == "Service" and selector.items() <= o["metadata"]["labels"].items()
        ]
        jobs = {o["metadata"]["labels"][monitor["spec"]["jobLabel"]] for o in scraped}
        self.assertEqual({"cohort-broker", "cohort-scheduler", "cohort-executor"}, jobs)
        self.assertEqual(3, len(scraped))
        with open(os.path.join(self.chart, "rules", "cohort-alerts.yaml")) as f:
            rule_jobs = set(re.findall(r'job="([^"]+)"', f.read()))
        self.assertTrue(rule_jobs)
        self.assertLessEqual(rule_jobs, jobs)
        self.assertEqual([{"port": "metrics", "path": "/metrics", "interval": "30s"}], monitor["spec"]["endpoints"])
        for values, objects in self.rendered.items():
            if values != self.scenario("monitoring"):
                self.assertEqual([], [o for o in objects if o["kind"] in ("ServiceMonitor", "PrometheusRule")])

    def test_prometheus_rule_holds_the_rules_file(self):
        objects = self.rendered[self.scenario("monitoring")]
        rule = self.find(objects, "PrometheusRule", "")
        with open(os.path.join(self.chart, "rules", "cohort-alerts.yaml")) as f:
            self.assertEqual(yaml.safe_load(f), rule["spec"])

    def test_dashboard_config_map_holds_the_dashboard_for_the_sidecar(self):
        objects = self.rendered[None]
        cm = self.find(objects, "ConfigMap", "-dashboard")
        self.assertEqual("1", cm["metadata"]["labels"]["grafana_dashboard"])
        with open(os.path.join(self.chart, "dashboards", "cohort.json")) as f:
            self.assertEqual(json.load(f), json.loads(cm["data"]["cohort.json"]))
        folder = self.find(self.rendered[self.scenario("monitoring")], "ConfigMap", "-dashboard")
        self.assertEqual("Cohort", folder["metadata"]["annotations"]["grafana_folder"])
        self.assertEqual([], [o for o in self.rendered[self.scenario("ephemeral")] if o["kind"] == "ConfigMap"])

    def test_names_are_valid_and_cut_to_fit(self):
        for values, objects in self.rendered.items():
            with self.subTest(values=values):
                for o in objects:
                    name = o["metadata"]["name"]
                    self.assertRegex(name, DNS_LABEL)
                    self.assertLessEqual(len(name), 52 if o["kind"] == "StatefulSet" else 63, name)
        long_names = [o["metadata"]["name"] for o in self.rendered[self.scenario("long-name")]]
        self.assertIn("a-release-name-that-is-much-longer-than-scheduler-headless", long_names)

    # --- the chart's arguments against the real binaries ---------------------------

    def test_every_rendered_command_line_starts_the_real_binary(self):
        for values, objects in self.rendered.items():
            containers = {
                "broker": self.container(self.find(objects, "StatefulSet", "-broker")),
                "scheduler": self.container(self.find(objects, "StatefulSet", "-scheduler")),
                "executor": self.container(self.find(objects, "Deployment", "-executor")),
            }
            started = {}
            try:
                for name in cohort_services.KNOWN_SERVICES:
                    if name not in SERVICES:
                        continue
                    with self.subTest(values=values, service=name):
                        c = containers[name]
                        binary = os.path.basename(c["command"][0])
                        self.assertEqual(f"cohort-{name}", binary)
                        args = [a.replace("$(POD_NAME)", "rel-cohort-executor-0") for a in c["args"]]
                        # Later flags win: the addresses and directories of this machine.
                        args += ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"]
                        if "--data-dir" in " ".join(args):
                            args.append(f"--data-dir={tempfile.mkdtemp(dir=self.tmp)}")
                        if name != "broker":
                            args.append(f"--broker={started['broker'].grpc_address}")
                        started[name] = cohort_services.ServiceProcess(
                            cohort_services.runfile(f"services/{name}/{binary}"), args
                        )
            finally:
                statuses = {name: started[name].stop() for name in reversed(list(started))}
            self.assertEqual({name: 0 for name in started}, statuses, f"exit statuses ({values})")
        for name in SERVICES:
            self.assertIn(name, cohort_services.KNOWN_SERVICES)

    # --- rules and dashboard -----------------------------------------------------------

    def test_alert_rules_pass_promtool_and_their_unit_tests(self):
        rules = os.path.join(self.chart, "rules", "cohort-alerts.yaml")
        result = _run([PROMTOOL, "check", "rules", rules])
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)
        work = tempfile.mkdtemp(dir=self.tmp)
        shutil.copy(rules, work)
        shutil.copy(cohort_services.runfile("tests/chart/alerts_test.yaml"), work)
        result = _run([PROMTOOL, "test", "rules", "alerts_test.yaml"], cwd=work)
        self.assertEqual(0, result.returncode, result.stdout + result.stderr)

    def dashboard(self):
        with open(os.path.join(self.chart, "dashboards", "cohort.json")) as f:
            return json.load(f)

    def test_dashboard_has_a_prometheus_datasource_variable_used_everywhere(self):
        d = self.dashboard()
        self.assertEqual("cohort-overview", d["uid"])
        self.assertGreaterEqual(d["schemaVersion"], 36)
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual("datasource", variables["datasource"]["type"])
        self.assertEqual("prometheus", variables["datasource"]["query"])
        uses = {"type": "prometheus", "uid": "${datasource}"}
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                self.assertEqual(uses, v["datasource"], v["name"])
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            self.assertEqual(uses, p["datasource"], p["title"])
            for t in p["targets"]:
                self.assertEqual(uses, t["datasource"], p["title"])

    def test_dashboard_panels_have_unique_ids_and_do_not_overlap(self):
        d = self.dashboard()
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        cells = {}
        for p in d["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = p["title"]
        rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
        self.assertEqual(["Broker", "Executors", "Scheduler", "Errors"], rows)

    def test_dashboard_queries_are_well_formed(self):
        for p in self.dashboard()["panels"]:
            if p["type"] == "row":
                continue
            with self.subTest(panel=p["title"]):
                self.assertTrue(p.get("description"))
                ref_ids = [t["refId"] for t in p["targets"]]
                self.assertEqual(len(ref_ids), len(set(ref_ids)))
                for t in p["targets"]:
                    expr = t["expr"]
                    self.assertTrue(t.get("legendFormat"), expr)
                    for window in re.findall(r"\[([^\]]+)\]", expr):
                        self.assertEqual("$__rate_interval", window, expr)
                    if "histogram_quantile" in expr:
                        self.assertRegex(expr, r"_bucket\b")
                        self.assertRegex(expr, r"by \((\w+, )*le\)")

    # --- values.yaml ---------------------------------------------------------------

    def test_every_values_key_is_commented(self):
        with open(os.path.join(self.chart, "values.yaml")) as f:
            lines = f.read().splitlines()
        stack = []  # (indent, key) of the enclosing keys
        undocumented = []
        for i, line in enumerate(lines):
            match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
            if not match:
                continue
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            free_form = any(k in FREE_FORM_KEYS for _, k in stack)
            stack.append((indent, key))
            previous = next((p.strip() for p in reversed(lines[:i]) if p.strip()), "")
            if not free_form and not previous.startswith("#") and "#" not in line:
                undocumented.append(".".join(k for _, k in stack))
        self.assertEqual([], undocumented)

    def scenario(self, name):
        return os.path.join(self.chart, "ci", f"{name}-values.yaml")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", required=True, help="comma-separated, e.g. broker,executor")
    args, rest = parser.parse_known_args()
    SERVICES.extend(args.services.split(","))
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
