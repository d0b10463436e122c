"""The Helm chart (charts/cohort), checked with a real Helm (tools/install_helm.sh),
promtool and the real service binaries:

- `helm lint --strict` and `helm template` of the defaults, of every
  charts/cohort/ci/*-values.yaml scenario and of a set of `--set` toggles; the
  values.schema.json rejects each wrong value type in both; the rendered objects are
  what the chart
  promises (StatefulSets with volume claims for broker and scheduler, one replica each;
  an executor Deployment whose grace period outlasts its drain; gRPC probes; metrics
  ports, annotations, metrics Services apart from the client ones, ServiceMonitor and
  PrometheusRule; the dashboard ConfigMap; label values that stay strings whatever the
  release is named; no service links; executors spread over nodes; the helm test pod;
  the NOTES warning without persistence; the console only behind console.enabled, with
  its own metrics Service and an optional Ingress);
- every rendered container's arguments start the real binary (addresses and data dirs
  overridden to 127.0.0.1:0 and a temp dir), for the services of
  tests/dashboard/services.bzl;
- the alert rules pass `promtool check rules` and the unit tests of alerts_test.yaml;
- the dashboard's structure (datasource variable, ids, grid, queries).

- every rendered object, in every scenario and toggle, strictly against the Kubernetes
  API's schema (k8s_schema.py: unknown fields, types, required fields), and the
  executor autoscaling (HorizontalPodAutoscaler or KEDA ScaledObject) on queue depth.

Not checked here: admission by a live API server (no cluster), and the PromQL and
metric names against data (//tests/dashboard:dashboard_test).
"""

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tempfile
import unittest

import grpc
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cohort_services  # noqa: E402
import k8s_schema  # noqa: E402

HELM = "/usr/local/bin/helm"
PROMTOOL = "/usr/bin/promtool"
SERVICES = []  # from --services
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# values.yaml keys under these are Kubernetes objects, documented by their parent.
# --set toggles rendered (and linted) on top of the defaults, one tuple per render.
TOGGLES = [
    ("broker.service.type=LoadBalancer", "scheduler.service.type=NodePort"),
    ("executor.topologySpread.enabled=false", "executor.replicas=0"),
    ("helmTest.enabled=false", "dashboard.enabled=false", "metrics.podAnnotations=false"),
    ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"),
    ("image.tag=1.10", "image.repository=registry.example/cohort", "image.pullPolicy=Always"),
    ("broker.probes.liveness.timeoutSeconds=9", "executor.probes.readiness.periodSeconds=3"),
    ("executor.inheritEnv=true", "executor.allowExec={/opt/jobs/*}", "executor.queues={a,b}"),
    ("executor.autoscaling.mode=hpa", "executor.queues={a,b}", "broker.minFreeDisk=0"),
    ("console.enabled=true", "console.readOnly=true", "console.ingress.enabled=true",
     "console.ingress.host=cohort.example.com", "console.service.type=LoadBalancer"),
]
CONSOLE = TOGGLES[-1]
# Each value that values.schema.json must reject, with the path helm names.
REJECTED = [
    ("executor.replicas=two", "/executor/replicas"),
    ("metrics.serviceMonitor.enabled=no", "/metrics/serviceMonitor/enabled"),
    ("broker.service.port=abc", "/broker/service/port"),
    ("broker.service.port=70000", "/broker/service/port"),
    ("broker.persistence.size=ten", "/broker/persistence/size"),
    ("scheduler.persistence.size=ten", "/scheduler/persistence/size"),
    ("image.tag=2", "/image/tag"),
    ("broker.lease=5", "/broker/lease"),
    ("executor.capacity=0", "/executor/capacity"),
    ("executor.topologySpread.whenUnsatisfiable=Sometimes", "/executor/topologySpread/whenUnsatisfiable"),
    ("scheduler.replicas=3", "/scheduler"),
    ("brokr.lease=5s", "brokr"),
    ("console.enabled=yes", "/console/enabled"),
    ("executor.autoscaling.mode=vpa", "/executor/autoscaling/mode"),
    ("executor.autoscaling.maxReplicas=0", "/executor/autoscaling/maxReplicas"),
    ("broker.minFreeDisk=-1", "/broker/minFreeDisk"),
    ("console.httpPort=70000", "/console/httpPort"),
    ("console.httpThreads=2", "/console/httpThreads"),
    ("broker.replicas=2", "/broker/replicas"),
    ("broker.replication.podAntiAffinity=sometimes", "/broker/replication/podAntiAffinity"),
    ("broker.replication.initialReplicas=4", "/broker/replication/initialReplicas"),
]
FREE_FORM_KEYS = {
    "resources", "podSecurityContext", "securityContext", "labels", "seccompProfile", "capabilities",
    "startup", "readiness", "liveness",  # Kubernetes probe fields
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health_check(address, bound=10.0):
    """grpc.health.v1.Health/Check of the whole server at address (plaintext, as kubelet's
    gRPC probe): the serialized response, polled until SERVING (b"\\x08\\x01") or `bound`."""
    deadline = time.monotonic() + bound
    answer = None
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        while time.monotonic() < deadline:
            try:
                answer = check(b"", timeout=2)
            except grpc.RpcError as e:
                answer = e.code()
            if answer == b"\x08\x01":
                break
            time.sleep(0.1)  # polling: the replica decides its readiness every 250 ms
    return answer


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
        cls.toggled = {sets: cls.render(sets=sets) for sets in TOGGLES}

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

    def test_lint_passes_for_defaults_every_scenario_and_every_toggle(self):
        self.assertGreaterEqual(len(self.scenarios), 4)
        runs = [(["-f", values] if values else []) for values in self.scenarios]
        runs += [[a for s in sets for a in ("--set", s)] for sets in TOGGLES]
        for extra in runs:
            argv = [HELM, "lint", "--strict", self.chart, *extra]
            result = _run(argv)
            self.assertEqual(0, result.returncode, f"{' '.join(argv)}\n{result.stdout}{result.stderr}")

    def test_schema_rejects_each_wrong_value_in_lint_and_template(self):
        for setting, path in REJECTED:
            with self.subTest(setting=setting):
                template = self.helm_template(sets=[setting])
                self.assertNotEqual(0, template.returncode, setting)
                self.assertIn("don't meet the specifications of the schema", template.stderr)
                self.assertIn(path, template.stderr)
                lint = _run([HELM, "lint", self.chart, "--set", setting])
                self.assertNotEqual(0, lint.returncode, setting)
                self.assertIn(path, lint.stdout + lint.stderr)

    def test_a_numeric_tag_in_a_values_file_is_rejected_and_a_quoted_one_renders(self):
        values = os.path.join(self.tmp, "tag-values.yaml")
        with open(values, "w") as f:
            f.write("image:\n  tag: 1.10\n")
        result = self.helm_template(values)
        self.assertNotEqual(0, result.returncode)
        self.assertIn("/image/tag", result.stderr)
        with open(values, "w") as f:
            f.write('image:\n  tag: "1.10"\n')
        for o in self.render(values):
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                self.assertEqual("cohort:1.10", c["image"])

    def test_toggles_render_what_they_say(self):
        for sets, objects in self.toggled.items():
            with self.subTest(sets=sets):
                self.find(objects, "StatefulSet", "-broker")
                self.find(objects, "Deployment", "-executor")
        images = {c["image"] for o in self.toggled[TOGGLES[4]] if o["kind"] in ("StatefulSet", "Deployment")
                  for c in o["spec"]["template"]["spec"]["containers"]}
        self.assertEqual({"registry.example/cohort:1.10"}, images)  # --set's 1.10 is a string
        executor = self.find(self.toggled[TOGGLES[1]], "Deployment", "-executor")
        self.assertEqual(0, executor["spec"]["replicas"])
        self.assertNotIn("topologySpreadConstraints", executor["spec"]["template"]["spec"])
        self.assertEqual([], [o for o in self.toggled[TOGGLES[2]] if o["kind"] in ("Pod", "ConfigMap")])
        broker = self.container(self.find(self.toggled[TOGGLES[5]], "StatefulSet", "-broker"))
        self.assertEqual(9, broker["livenessProbe"]["timeoutSeconds"])
        executor = self.container(self.find(self.toggled[TOGGLES[5]], "Deployment", "-executor"))
        self.assertEqual(3, executor["readinessProbe"]["periodSeconds"])

    def test_console_renders_only_when_enabled_with_its_services_and_ingress(self):
        for values, objects in self.rendered.items():
            self.assertEqual([], [o["metadata"]["name"] for o in objects if "-console" in o["metadata"]["name"]], values)
        objects = self.toggled[CONSOLE]
        deployment = self.find(objects, "Deployment", "-console")
        pod = deployment["spec"]["template"]["spec"]
        c = self.container(deployment)
        self.assertEqual(["/usr/local/bin/cohort-console"], c["command"])
        flags = self.flags(c)
        self.assertEqual("rel-cohort-broker:7070", flags["broker"])
        self.assertEqual("rel-cohort-scheduler:7071", flags["scheduler"])
        self.assertEqual("/usr/share/cohort/console", flags["assets-dir"])
        self.assertIn("read-only", flags)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual({"http": 7080, "metrics": 9474}, ports)
        self.assertEqual("0.0.0.0:7080", flags["listen"])
        self.assertEqual("0.0.0.0:9474", flags["metrics-listen"])
        self.assertEqual({"path": "/api/config", "port": "http"}, c["readinessProbe"]["httpGet"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertIs(False, pod["enableServiceLinks"])
        self.assertEqual("9474", deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
        service = self.find(objects, "Service", "-console")
        self.assertEqual("LoadBalancer", service["spec"]["type"])
        self.assertEqual(["http"], [p["name"] for p in service["spec"]["ports"]])  # never /metrics
        metrics = self.find(objects, "Service", "-console-metrics")
        self.assertEqual("None", metrics["spec"]["clusterIP"])
        self.assertEqual([{"name": "metrics", "port": 9474, "targetPort": "metrics"}], metrics["spec"]["ports"])
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        for svc in (service, metrics):
            self.assertEqual(svc["spec"]["selector"], {k: pod_labels[k] for k in svc["spec"]["selector"]})
        ingress = self.find(objects, "Ingress", "-console")
        [rule] = ingress["spec"]["rules"]
        self.assertEqual("cohort.example.com", rule["host"])
        backend = rule["http"]["paths"][0]["backend"]["service"]
        self.assertEqual({"name": "rel-cohort-console", "port": {"name": "http"}}, backend)
        self.assertEqual([], [o for o in self.toggled[TOGGLES[0]] if o["kind"] == "Ingress"])

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
                    ("Service", "-broker-metrics"),
                    ("Service", "-scheduler-metrics"),
                    ("Service", "-executor-metrics"),
                    ("Pod", "-test"),
                ]:
                    self.find(objects, kind, suffix)

    def test_broker_and_scheduler_are_single_stateful_replicas_with_their_own_volume(self):
        for values, objects in self.rendered.items():
            for name, port in [("broker", 7070), ("scheduler", 7071)]:
                with self.subTest(values=values, component=name):
                    sts = self.find(objects, "StatefulSet", f"-{name}")
                    replicated = name == "broker" and values == self.scenario("replicated")
                    self.assertEqual(3 if replicated else 1, sts["spec"]["replicas"])
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
                        # A replicated broker's clients dial its headless Service.
                        broker = "-broker-headless:7070" if values == self.scenario("replicated") else "-broker:7070"
                        self.assertTrue(flags["broker"].endswith(broker), flags)
        # No values knob makes a second scheduler: the schema refuses one
        # (test_schema_rejects_each_wrong_value_in_lint_and_template).

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

    def test_every_rendered_object_is_valid_against_the_kubernetes_api_schema(self):
        renders = list(self.rendered.items()) + list(self.toggled.items())
        for where, objects in renders:
            for obj in objects:
                with self.subTest(where=where, kind=obj.get("kind"), name=obj["metadata"]["name"]):
                    k8s_schema.validate(obj)

    def test_the_schema_check_refuses_unknown_fields_wrong_types_and_missing_fields(self):
        workload = self.find(self.rendered[None], "Deployment", "-executor")
        broken = [
            ("unknown field 'replica'", lambda w: w["spec"].update(replica=2)),
            ("expected an integer", lambda w: w["spec"].update(replicas="2")),
            ("unknown field 'imagePullPolicy'", lambda w: w["spec"]["template"]["spec"].update(imagePullPolicy="Always")),
            ("must not be `None`", lambda w: self.container(w).pop("name")),
            ("unknown field 'portt'", lambda w: self.container(w)["readinessProbe"]["grpc"].update(portt=1)),
            ("expected a string", lambda w: w["metadata"]["labels"].update(version=1.1)),
        ]
        for message, damage in broken:
            with self.subTest(message=message):
                copy = json.loads(json.dumps(workload))
                damage(copy)
                with self.assertRaisesRegex(k8s_schema.SchemaError, re.escape(message)):
                    k8s_schema.validate(copy)
        monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                   "metadata": {"name": "m"}, "spec": {"endpoints": [{"port": "metrics", "intervall": "5s"}]}}
        with self.assertRaisesRegex(k8s_schema.SchemaError, "unknown field 'intervall'"):
            k8s_schema.validate(monitor)

    def test_executor_autoscaling_targets_the_deployment_on_the_release_queue_depth(self):
        hpa = self.find(self.rendered[self.scenario("autoscaling-hpa")], "HorizontalPodAutoscaler", "-executor")
        self.assertEqual("rel-cohort-executor", hpa["spec"]["scaleTargetRef"]["name"])
        self.assertEqual((2, 20), (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]))
        metric = hpa["spec"]["metrics"][0]["external"]
        self.assertEqual("cohort_broker_queue_depth", metric["metric"]["name"])
        self.assertEqual({"namespace": "jobs", "service": "rel-cohort-broker-metrics"},
                         metric["metric"]["selector"]["matchLabels"])
        self.assertEqual(["default", "images"], metric["metric"]["selector"]["matchExpressions"][0]["values"])
        self.assertEqual("200", metric["target"]["averageValue"])
        deployment = self.find(self.rendered[self.scenario("autoscaling-hpa")], "Deployment", "-executor")
        self.assertNotIn("replicas", deployment["spec"], "a fixed replica count would fight the autoscaler")

        keda = self.find(self.rendered[self.scenario("autoscaling-keda")], "ScaledObject", "-executor")
        self.assertEqual(0, keda["spec"]["minReplicaCount"])
        query = keda["spec"]["triggers"][0]["metadata"]["query"]
        self.assertEqual('sum(cohort_broker_queue_depth{namespace="jobs",service="rel-cohort-broker-metrics"})', query)
        for objects in self.rendered.values():
            if not any(o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject") for o in objects):
                self.assertIn("replicas", self.find(objects, "Deployment", "-executor")["spec"])
        refused = self.helm_template(sets=["executor.autoscaling.mode=hpa", "executor.autoscaling.minReplicas=0"])
        self.assertNotEqual(0, refused.returncode)
        self.assertIn("cannot scale to zero", refused.stderr)

    def test_broker_min_free_disk_follows_the_values(self):
        for objects, expected in [(self.rendered[None], "67108864"), (self.toggled[TOGGLES[-2]], "0")]:
            self.assertEqual(expected, self.flags(self.container(self.find(objects, "StatefulSet", "-broker")))["min-free-disk"])

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
                    # kubelet's gRPC probe has no TLS: with TLS on, the port is probed by TCP.
                    tls = "--tls-cert=/etc/cohort/tls/tls.crt" in c["args"]
                    # A replica of a replicated broker is alive on /metrics (only the leader
                    # listens on gRPC) and Ready on its plaintext health port.
                    replicated = suffix == "-broker" and "--replicas" in " ".join(c["args"])
                    for probe in ("readinessProbe", "livenessProbe"):
                        if replicated and probe == "livenessProbe":
                            self.assertEqual({"path": "/metrics", "port": "metrics"}, c[probe]["httpGet"], probe)
                        elif replicated:
                            health = {p["name"]: p["containerPort"] for p in c["ports"]}["health"]
                            self.assertEqual({"port": health}, c[probe]["grpc"], probe)
                        else:
                            self.assertEqual({"port": port}, c[probe]["tcpSocket" if tls else "grpc"], probe)
                        self.assertEqual(5, c[probe]["timeoutSeconds"], probe)  # values' probes

    def test_a_replicated_broker_is_a_group_with_a_majority_kept_and_drainable(self):
        objects = self.rendered[self.scenario("replicated")]
        sts = self.find(objects, "StatefulSet", "-broker")
        name = sts["metadata"]["name"]
        self.assertEqual("Parallel", sts["spec"]["podManagementPolicy"])
        pod = sts["spec"]["template"]["spec"]
        c = self.container(sts)
        flags = self.flags(c)
        self.assertEqual("$(POD_NAME)", flags["replica-pod-name"])
        self.assertEqual({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, c["env"][0])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(
            ",".join(f"{i + 1}={name}-{i}.{name}-headless.jobs.svc:{ports['raft']}" for i in range(3)),
            flags["replicas"])
        headless = self.find(objects, "Service", "-broker-headless")
        self.assertEqual(name + "-headless", sts["spec"]["serviceName"])
        # Its name lists every replica, Ready or not: clients find the leader among them.
        self.assertTrue(headless["spec"]["publishNotReadyAddresses"])
        self.assertIn({"name": "raft", "port": ports["raft"], "targetPort": "raft"}, headless["spec"]["ports"])
        self.assertIn({"name": "health", "port": ports["health"], "targetPort": "health"}, headless["spec"]["ports"])
        # Scaling needs no command: every pod knows its own raft address, and one beyond the
        # starting group (not in --replicas) asks the leader to add it through the
        # replicas' health ports, which the headless Service's name resolves to.
        self.assertEqual(f"$(POD_NAME).{name}-headless.jobs.svc:{ports['raft']}", flags["replica-address"])
        self.assertEqual(f"{name}-headless.jobs.svc:{ports['health']}", flags["join-through"])
        self.assertIn({"name": "grpc", "port": ports["grpc"], "targetPort": "grpc"}, headless["spec"]["ports"])
        # Alive is /metrics, which every member serves. Ready is the replica's own gRPC
        # health port (plaintext whatever tls says: kubelet's probe speaks none), SERVING
        # on the leader and on caught-up followers: not leading alone, or the budget below
        # would count one healthy pod and block every drain.
        for probe in ("startupProbe", "livenessProbe"):
            self.assertEqual({"path": "/metrics", "port": "metrics"}, c[probe]["httpGet"], probe)
        self.assertEqual({"port": ports["health"]}, c["readinessProbe"]["grpc"])
        self.assertNotIn("httpGet", c["readinessProbe"])
        self.assertEqual(f"0.0.0.0:{ports['health']}", flags["health-listen"])
        self.assertEqual("1000", flags["ready-max-lag-entries"])
        tuned = self.container(self.find(
            self.render(values=self.scenario("replicated"),
                        sets=["broker.replication.healthPort=7999", "broker.replication.readyMaxLagEntries=50",
                              "tls.enabled=true", "tls.existingSecret=cohort-tls"]),
            "StatefulSet", "-broker"))
        self.assertEqual({"port": 7999}, tuned["readinessProbe"]["grpc"])
        self.assertEqual("0.0.0.0:7999", self.flags(tuned)["health-listen"])
        self.assertEqual("50", self.flags(tuned)["ready-max-lag-entries"])
        # Every client of the release dials the headless Service, never the client
        # Service (which would spread connections over members that do not listen).
        address = f"{name}-headless:{ports['grpc']}"
        for kind, suffix in [("StatefulSet", "-scheduler"), ("Deployment", "-executor")]:
            self.assertEqual(address, self.flags(self.container(self.find(objects, kind, suffix)))["broker"], suffix)
        test_pod = self.find(objects, "Pod", "-test")
        servers = [a for ctr in test_pod["spec"].get("initContainers", []) + test_pod["spec"]["containers"]
                   for a in ctr.get("args", []) if a.startswith("--server=")]
        self.assertEqual([f"--server={address}"] * 2, servers)
        console = self.find(self.render(values=self.scenario("replicated"), sets=["console.enabled=true"]),
                            "Deployment", "-console")
        self.assertEqual(address, self.flags(self.container(console))["broker"])
        term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        self.assertEqual("kubernetes.io/hostname", term["topologyKey"])
        self.assertEqual(sts["spec"]["selector"]["matchLabels"], term["labelSelector"]["matchLabels"])
        # The budget keeps a majority of the members and, all of them Ready, lets a drain
        # evict one pod of 3 (two of 5) and no more.
        for replicas, majority in [(3, 2), (5, 3)]:
            rendered = objects if replicas == 3 else self.render(
                sets=[f"broker.replicas={replicas}", "broker.replication.podAntiAffinity=preferred"])
            pdb = self.find(rendered, "PodDisruptionBudget", "-broker")
            group = self.find(rendered, "StatefulSet", "-broker")
            self.assertEqual(majority, pdb["spec"]["minAvailable"])
            self.assertNotIn("maxUnavailable", pdb["spec"])
            self.assertEqual(group["spec"]["selector"]["matchLabels"], pdb["spec"]["selector"]["matchLabels"])
            # Kubernetes' disruptionsAllowed with every pod Ready is replicas - minAvailable.
            self.assertEqual(replicas - 1 - replicas // 2, replicas - pdb["spec"]["minAvailable"])
            self.assertEqual("$(POD_NAME)", self.flags(self.container(group))["replica-pod-name"])
            # The starting group stays the first 3 whatever the size: growing 3 -> 5 changes
            # no pod's arguments (no rolling restart), pods 4 and 5 join.
            self.assertEqual(self.flags(c)["replicas"], self.flags(self.container(group))["replicas"])
            self.assertEqual(c["args"], self.container(group)["args"])
        five = self.container(self.find(self.render(sets=["broker.replicas=5", "broker.replication.initialReplicas=5",
                                                          "broker.replication.podAntiAffinity=preferred"]),
                                        "StatefulSet", "-broker"))
        self.assertEqual(
            ",".join(f"{i + 1}={name}-{i}.{name}-headless.jobs.svc:{ports['raft']}" for i in range(5)),
            self.flags(five)["replicas"])
        spread = self.find(self.render(sets=["broker.replicas=5", "broker.replication.podAntiAffinity=preferred"]),
                           "StatefulSet", "-broker")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        self.assertIn("preferredDuringSchedulingIgnoredDuringExecution", spread)
        # A single broker has none of it, and its clients dial its client Service.
        single = self.find(self.rendered[None], "StatefulSet", "-broker")
        self.assertNotIn("replicas", self.flags(self.container(single)))
        self.assertNotIn("podManagementPolicy", single["spec"])
        self.assertEqual([], [o for o in self.rendered[None] if o["kind"] == "PodDisruptionBudget"])
        executor = self.container(self.find(self.rendered[None], "Deployment", "-executor"))
        self.assertEqual("rel-cohort-broker:7070", self.flags(executor)["broker"])

    def test_a_replicated_group_shares_a_secret_mounted_read_only_and_a_single_broker_has_none(self):
        objects = self.rendered[self.scenario("replicated")]
        sts = self.find(objects, "StatefulSet", "-broker")
        c = self.container(sts)
        self.assertEqual("/etc/cohort/replication/secret", self.flags(c)["replica-secret-file"])
        self.assertIn({"name": "replication", "mountPath": "/etc/cohort/replication", "readOnly": True},
                      c["volumeMounts"])
        volume = [v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "replication"]
        self.assertEqual([{"name": "replication", "secret": {"secretName": "rel-cohort-broker-replication",
                                                              "items": [{"key": "replica-secret", "path": "secret"}]}}],
                         volume)
        # Made by the chart (helm template has no cluster to look an existing one up in):
        # 64 random characters, more than the broker's minimum of 32 bytes.
        secret = self.find(objects, "Secret", "-broker-replication")
        value = base64.b64decode(secret["data"]["replica-secret"])
        self.assertEqual(64, len(value))
        self.assertNotEqual(value, base64.b64decode(self.find(self.render(values=self.scenario("replicated")), "Secret",
                                                              "-broker-replication")["data"]["replica-secret"]))
        # An existing Secret of the operator's: referenced, none made.
        own = self.render(values=self.scenario("replicated"),
                          sets=["broker.replication.secret.existingSecret=my-group", "broker.replication.secret.key=k"])
        self.assertEqual([], [o for o in own if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-replication")])
        volume = [v for v in self.find(own, "StatefulSet", "-broker")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "replication"]
        self.assertEqual({"secretName": "my-group", "items": [{"key": "k", "path": "secret"}]}, volume[0]["secret"])
        # A single broker has no group: no secret, no flag, no mount.
        single = self.rendered[None]
        self.assertEqual([], [o for o in single if o["kind"] == "Secret"])
        self.assertNotIn("replica-secret-file", self.flags(self.container(self.find(single, "StatefulSet", "-broker"))))

    def test_servers_use_tls_or_say_insecure_and_clients_follow(self):
        workloads = [("StatefulSet", "-broker"), ("StatefulSet", "-scheduler"), ("Deployment", "-executor")]
        for values, objects in self.rendered.items():
            text = ""
            if values:
                with open(values, encoding="utf-8") as f:
                    text = f.read()
            tls, mtls, auth = "tls:\n  enabled: true" in text, "requireClientCert: true" in text, "auth:\n  enabled: true" in text
            for kind, suffix in workloads:
                with self.subTest(values=values, workload=suffix):
                    w = self.find(objects, kind, suffix)
                    pod = w["spec"]["template"]["spec"]
                    self.assertFalse(pod["automountServiceAccountToken"])
                    account = self.find(objects, "ServiceAccount", "")
                    self.assertEqual(pod["serviceAccountName"], account["metadata"]["name"])
                    f = self.flags(self.container(w))
                    self.assertEqual("insecure" in f, not tls)
                    self.assertEqual(f.get("tls-cert"), "/etc/cohort/tls/tls.crt" if tls else None)
                    self.assertEqual(f.get("tls-client-ca"), "/etc/cohort/tls/ca.crt" if mtls else None)
                    self.assertEqual(f.get("auth-tokens"), "/etc/cohort/auth/tokens" if auth else None)
                    if suffix != "-broker":
                        self.assertEqual(f.get("broker-tls-ca"), "/etc/cohort/tls/ca.crt" if tls else None)
                        self.assertEqual(f.get("broker-tls-cert"), "/etc/cohort/tls/tls.crt" if mtls else None)
                        self.assertEqual("broker-token-file" in f, auth)
                    volumes = {v["name"] for v in pod["volumes"]}
                    self.assertEqual("tls" in volumes, tls)
                    self.assertEqual("auth" in volumes, auth)
            accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
            self.assertEqual(len(accounts), 1)
            self.assertFalse(accounts[0]["automountServiceAccountToken"])

    def test_tokens_without_tls_fail_to_render(self):
        result = self.helm_template(sets=("auth.enabled=true", "auth.existingSecret=cohort-auth"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("auth.enabled needs tls.enabled", result.stderr)

    def test_network_policies_let_only_the_release_and_labelled_clients_reach_the_broker(self):
        objects = self.rendered[os.path.join(self.chart, "ci", "tls-values.yaml")]
        broker = self.find(objects, "NetworkPolicy", "-broker")
        grpc_rule, metrics_rule = broker["spec"]["ingress"]
        self.assertEqual([p["port"] for p in grpc_rule["ports"]], [7070])
        components = [f["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for f in grpc_rule["from"]]
        self.assertEqual(components, ["executor", "scheduler", "test", None])
        self.assertEqual(grpc_rule["from"][3]["podSelector"]["matchLabels"], {"cohort-client": "true"})
        self.assertEqual([p["port"] for p in metrics_rule["ports"]], [9470])
        self.assertIn("namespaceSelector", metrics_rule["from"][0])
        pdb = self.find(objects, "PodDisruptionBudget", "-executor")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        # A replicated group's replicas reach each other's raft port, and nothing else does.
        values = os.path.join(self.chart, "ci", "tls-values.yaml")
        group = self.find(self.render(values=values, sets=["broker.replicas=3"]), "NetworkPolicy", "-broker")
        grpc_rule, raft_rule, metrics_rule = group["spec"]["ingress"]
        self.assertEqual([7070, 7072, 9470], [r["ports"][0]["port"] for r in (grpc_rule, raft_rule, metrics_rule)])
        # The health port too: a new replica asks to join through it (ReplicaPeers.Join).
        self.assertEqual([7072, 7073], [p["port"] for p in raft_rule["ports"]])
        sts = self.find(self.render(values=values, sets=["broker.replicas=3"]), "StatefulSet", "-broker")
        self.assertEqual([{"podSelector": {"matchLabels": sts["spec"]["selector"]["matchLabels"]}}], raft_rule["from"])

    def test_cert_manager_certificate_names_the_services_the_clients_dial(self):
        values = os.path.join(self.chart, "ci", "mtls-tokens-values.yaml")
        objects = self.rendered[values]
        cert = self.find(objects, "Certificate", "-tls")
        self.assertIn("rel-cohort-broker", cert["spec"]["dnsNames"])
        self.assertIn("rel-cohort-scheduler", cert["spec"]["dnsNames"])
        self.assertNotIn("rel-cohort-broker-headless", cert["spec"]["dnsNames"])
        # A replicated broker's clients dial its headless Service.
        group = self.find(self.render(values=values, sets=["broker.replicas=3"]), "Certificate", "-tls")
        self.assertIn("rel-cohort-broker-headless", group["spec"]["dnsNames"])
        self.assertIn("rel-cohort-broker-headless.jobs.svc", group["spec"]["dnsNames"])
        self.assertEqual(cert["spec"]["secretName"], "rel-cohort-tls")
        self.assertEqual(sorted(cert["spec"]["usages"]), ["client auth", "server auth"])

    def test_metrics_ports_annotations_and_services_agree(self):
        for values, objects in self.rendered.items():
            for kind, suffix, port, service in [
                ("StatefulSet", "-broker", 9470, "-broker-metrics"),
                ("StatefulSet", "-scheduler", 9471, "-scheduler-metrics"),
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
                    self.assertEqual([{"name": "metrics", "port": port, "targetPort": "metrics"}], svc["spec"]["ports"])
                    self.assertEqual("None", svc["spec"]["clusterIP"])  # in-cluster only
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

    def test_client_services_never_publish_metrics(self):
        objects = self.toggled[TOGGLES[0]]
        for name, kind in [("-broker", "LoadBalancer"), ("-scheduler", "NodePort")]:
            svc = self.find(objects, "Service", name)
            self.assertEqual(kind, svc["spec"]["type"])
            self.assertEqual(["grpc"], [p["name"] for p in svc["spec"]["ports"]])

    def test_label_values_stay_strings_whatever_the_release_is_named(self):
        for release in ("true", "on", "123", "null"):
            result = _run([HELM, "template", release, self.chart, "--namespace", "007",
                           "--set", "metrics.serviceMonitor.enabled=true", "--set", "console.enabled=true"])
            self.assertEqual(0, result.returncode, result.stderr)
            objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
            for o in objects:
                maps = [o["metadata"].get("labels", {})]
                spec = o.get("spec", {})
                maps += [spec.get("selector", {}).get("matchLabels", {}) if o["kind"] != "Service" else spec.get("selector", {})]
                maps.append(spec.get("template", {}).get("metadata", {}).get("labels", {}))
                for c in spec.get("template", {}).get("spec", {}).get("topologySpreadConstraints", []):
                    maps.append(c["labelSelector"]["matchLabels"])
                with self.subTest(release=release, object=o["metadata"]["name"]):
                    for labels in maps:
                        self.assertEqual({}, {k: v for k, v in labels.items() if not isinstance(v, str)})
                    if "app.kubernetes.io/instance" in maps[0]:
                        self.assertEqual(release, maps[0]["app.kubernetes.io/instance"])
            monitor = self.find(objects, "ServiceMonitor", "")
            self.assertEqual(["007"], monitor["spec"]["namespaceSelector"]["matchNames"])

    def test_pods_get_no_service_links_and_volumes_change_owner_only_on_mismatch(self):
        for values, objects in self.rendered.items():
            for o in objects:
                pod = o["spec"] if o["kind"] == "Pod" else o.get("spec", {}).get("template", {}).get("spec")
                if pod is None:
                    continue
                with self.subTest(values=values, object=o["metadata"]["name"]):
                    self.assertIs(False, pod["enableServiceLinks"])
                    self.assertEqual("OnRootMismatch", pod["securityContext"]["fsGroupChangePolicy"])

    def test_executors_spread_over_nodes(self):
        for values, objects in self.rendered.items():
            with self.subTest(values=values):
                deployment = self.find(objects, "Deployment", "-executor")
                pod = deployment["spec"]["template"]["spec"]
                [constraint] = pod["topologySpreadConstraints"]
                self.assertEqual("kubernetes.io/hostname", constraint["topologyKey"])
                self.assertEqual("ScheduleAnyway", constraint["whenUnsatisfiable"])
                self.assertEqual(deployment["spec"]["selector"]["matchLabels"], constraint["labelSelector"]["matchLabels"])

    def test_helm_test_pod_checks_health_then_runs_an_echo_job(self):
        objects = self.rendered[None]
        pod = self.find(objects, "Pod", "-test")
        self.assertEqual("test", pod["metadata"]["annotations"]["helm.sh/hook"])
        self.assertEqual("Never", pod["spec"]["restartPolicy"])
        [health] = pod["spec"]["initContainers"]
        [echo] = pod["spec"]["containers"]
        for c in (health, echo):
            self.assertEqual(["/usr/local/bin/cohortctl"], c["command"])
            self.assertIn("--server=rel-cohort-broker:7070", c["args"])
            self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual("queues", health["args"][-1])
        self.assertEqual(["submit", "--wait", "default", "builtin.echo"], echo["args"][2:6])

    def test_notes_warn_when_persistence_is_off(self):
        def notes(*sets):
            argv = [HELM, "install", "rel", self.chart, "--dry-run", "--namespace", "jobs"]
            for s in sets:
                argv += ["--set", s]
            result = _run(argv)
            self.assertEqual(0, result.returncode, result.stderr)
            return result.stdout.split("NOTES:", 1)[1]
        self.assertNotIn("WARNING", notes())
        off = notes("broker.persistence.enabled=false")
        self.assertIn("WARNING: persistence is off for the broker", off)
        self.assertNotIn("scheduler (every", off)
        both = notes("broker.persistence.enabled=false", "scheduler.persistence.enabled=false")
        self.assertIn("broker (every job and result is lost when its pod restarts) and the scheduler", both)
        # A replicated group: every replica forwarded, cohortctl given the list.
        group = notes("broker.replicas=3")
        self.assertIn("port-forward pod/rel-cohort-broker-2 17072:7070 &", group)
        self.assertIn("cohortctl --server=127.0.0.1:17070,127.0.0.1:17071,127.0.0.1:17072 ...", group)
        self.assertNotIn("svc/rel-cohort-broker ", group)

    def test_names_are_valid_and_cut_to_fit(self):
        for values, objects in self.rendered.items():
            with self.subTest(values=values):
                for o in objects:
                    name = o["metadata"]["name"]
                    self.assertRegex(name, DNS_LABEL)
                    self.assertLessEqual(len(name), 52 if o["kind"] == "StatefulSet" else 63, name)
        long_names = [o["metadata"]["name"] for o in self.rendered[self.scenario("long-name")]]
        self.assertIn("a-release-name-that-is-much-longer-than-scheduler-headless", long_names)
        # A release named with digits first: every name still starts with a letter, as
        # Services (DNS-1035) require.
        numeric = _run([HELM, "template", "123", self.chart, "--namespace", "jobs"])
        self.assertEqual(0, numeric.returncode, numeric.stderr)
        names = [d["metadata"]["name"] for d in yaml.safe_load_all(numeric.stdout) if d]
        self.assertIn("c123-cohort-broker", names)
        for name in names:
            self.assertRegex(name, DNS_LABEL)

    # --- the chart's arguments against the real binaries ---------------------------

    def security_files(self):
        """What the chart mounts at /etc/cohort/ (tls/, auth/, replication/), made here: a CA and one
        certificate for 127.0.0.1 by openssl, and a token file for the chart's clients."""
        root = tempfile.mkdtemp(dir=self.tmp) + "/"
        tls, auth = os.path.join(root, "tls"), os.path.join(root, "auth")
        os.makedirs(tls)
        os.makedirs(auth)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        ca_key = os.path.join(root, "ca.key")
        for argv in (
            ["req", "-x509", *ec, "-keyout", ca_key, "-out", f"{tls}/ca.crt", "-days", "1", "-subj", "/CN=ca"],
            ["req", *ec, "-keyout", f"{tls}/tls.key", "-out", f"{root}/tls.csr", "-subj", "/CN=cohort"],
        ):
            subprocess.run(["openssl", *argv], check=True, capture_output=True)
        with open(f"{root}/ext", "w", encoding="utf-8") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
        subprocess.run(["openssl", "x509", "-req", "-in", f"{root}/tls.csr", "-CA", f"{tls}/ca.crt", "-CAkey", ca_key,
                        "-CAcreateserial", "-out", f"{tls}/tls.crt", "-days", "1", "-extfile", f"{root}/ext"],
                       check=True, capture_output=True)
        lines = []
        for name, scopes, executor in (("scheduler", "read,submit,release", ""), ("executor", "execute", "rel-cohort-executor-*")):
            token = f"{name}-test-token"
            with open(f"{auth}/{name}-token", "w", encoding="utf-8") as f:
                f.write(token + "\n")
            digest = hashlib.sha256(token.encode()).hexdigest()
            lines.append(f"sha256:{digest} principal={name} scopes={scopes}" + (f" executor={executor}" if executor else ""))
        with open(f"{auth}/tokens", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.makedirs(os.path.join(root, "replication"))
        with open(os.path.join(root, "replication", "secret"), "w", encoding="utf-8") as f:
            f.write("chart-test-replica-secret-0123456789abcdef\n")
        return root

    def test_every_rendered_command_line_starts_the_real_binary(self):
        secrets = self.security_files()
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
                        args = [
                            a.replace("$(POD_NAME)", f"rel-cohort-{name}-0").replace("/etc/cohort/", secrets)
                            for a in c["args"]
                        ]
                        # A replicated broker: a group of one on this machine (its peers' DNS
                        # names resolve only in the cluster; tests/replication runs three).
                        raft = f"127.0.0.1:{_free_port()}"
                        args = [f"--replicas=1={raft}" if a.startswith("--replicas=") else
                                f"--replica-address={raft}" if a.startswith("--replica-address=") else a
                                for a in args]
                        health = f"127.0.0.1:{_free_port()}"
                        args = [f"--health-listen={health}" if a.startswith("--health-listen=") else a for a in args]
                        # Later flags win: the addresses and directories of this machine (a
                        # replica's gRPC port is fixed: clients are given it before it listens).
                        listen = f"127.0.0.1:{_free_port()}" if any(a.startswith("--replicas=") for a in args) else "127.0.0.1:0"
                        args += [f"--listen={listen}", "--metrics-listen=127.0.0.1:0"]
                        if "--data-dir" in " ".join(args):
                            args.append(f"--data-dir={tempfile.mkdtemp(dir=self.tmp)}")
                        if name != "broker":
                            args.append(f"--broker={started['broker'].grpc_address}")
                        started[name] = cohort_services.ServiceProcess(
                            cohort_services.runfile(f"services/{name}/{binary}"), args
                        )
                        if any(a.startswith("--health-listen=") for a in args):
                            # The readinessProbe's port: a group of one leads, so SERVING.
                            self.assertEqual(b"\x08\x01", _health_check(health), "replica readiness")
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
        self.assertEqual(["Broker", "Executors", "Scheduler", "Errors", "Broker replication"], rows)

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
