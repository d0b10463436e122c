"""The container image (deploy/build_image.sh), built for real from the binaries of this
build and run with podman as Kubernetes runs the chart's pods:

- static: deploy/Dockerfile installs exactly the packages deploy/runtime_packages.py
  derives from the binaries (a difference names each package to add or remove), copies
  the six binaries to where the chart runs them and the console's front end to the
  chart's console.assetsDir, and its user is the chart's;
- the image: OCI labels (source, revision, version), user 10001, the six binaries, the
  console's built front end, and no shell, compiler or package manager;
- every component started with the arguments `helm template` renders (addresses
  overridden to 127.0.0.1:0: the containers share the host's network), as the chart's
  uid/gid, with a read-only root filesystem, every capability dropped, no privilege
  escalation, and a writable mount only where the chart mounts a volume (a podman volume
  for a PersistentVolumeClaim, a tmpfs for an emptyDir), console.enabled on. The broker,
  scheduler and executor answer gRPC health from the host; the console serves its page,
  its API over the containerised broker, and /metrics to the host; echo and exec jobs submitted with the host's
  cohortctl run in the containerised executor; SIGTERM to each container ends it with
  status 0 within the chart's terminationGracePeriodSeconds;
- the broker's data directory survives a new container on the same volume.

The image is built once per set of inputs (binaries, front-end sources, Dockerfile, build
script; the front end from console/web's lockfile, so the first build needs the npm
registry), tagged
localhost/cohort:test-<hash of them>, and reused by later runs. Skips (with the reason)
only where podman cannot run a container on this machine.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy"))

import cohort_services  # noqa: E402
import runtime_packages  # noqa: E402

HELM = "/usr/local/bin/helm"
# The runtime and cgroup manager that work on these machines' kernels (crun refuses
# hybrid cgroups), and open-file limits under the machine's hard limit.
PODMAN_FLAGS = ["--runtime=runc", "--cgroup-manager=cgroupfs"]
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# Where the Dockerfile's build context (bazel-bin/services) holds each binary.
BINARIES = {
    "cohort-broker": "broker/cohort-broker",
    "cohort-scheduler": "scheduler/cohort-scheduler",
    "cohort-executor": "executor/cohort-executor",
    "cohort-dev": "dev/cohort-dev",
    "cohortctl": "cli/cohortctl",
    "cohort-console": "console/cohort-console",
}
# The named build context (deploy/Dockerfile's COPY --from) of the console's front end.
ASSETS_CONTEXT = "console-web"
# The console's front end as in the runfiles (console/web's sources and lockfile).
WEB_SOURCES = "console/web"
# In debian:bookworm-slim already, so the Dockerfile may or may not name them.
SLIM_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
POD_NAME = "rel-cohort-executor-0"


def _run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def _dockerfile_instructions():
    with open(cohort_services.runfile("deploy/Dockerfile")) as f:
        # Continuation lines joined, comments dropped.
        text = re.sub(r"\\\n", " ", "".join(l for l in f if not l.lstrip().startswith("#")))
    return [line.split(None, 1) for line in text.splitlines() if line.strip()]


def _binary(name):
    return cohort_services.runfile("services/" + BINARIES[name])


def health(address):
    """grpc.health.v1.Health/Check of the whole server: its status (1 = SERVING)."""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        response = check(b"", timeout=10, wait_for_ready=True)
    # HealthCheckResponse{status = 1}: field 1, varint.
    return response[1] if response[:1] == b"\x08" else 0


class DockerfileTest(unittest.TestCase):
    """deploy/Dockerfile describes the image build_image.sh builds (no podman needed)."""

    @classmethod
    def setUpClass(cls):
        cls.instructions = _dockerfile_instructions()

    def test_dockerfile_installs_exactly_the_packages_derived_from_the_binaries(self):
        installs = [m.group(1) for kind, rest in self.instructions if kind == "RUN"
                    for m in [re.search(r"apt-get install ([^&]+)", rest)] if m]
        listed = {p for install in installs for p in install.split() if not p.startswith("-")}
        derived = set(runtime_packages.runtime_packages([_binary(name) for name in BINARIES]))
        missing = sorted((derived - listed) - SLIM_PACKAGES)
        unneeded = sorted((listed - derived) - SLIM_PACKAGES)
        problems = []
        if missing:
            problems.append(f"add {', '.join(missing)} to deploy/Dockerfile's apt-get install (the binaries link "
                            "their libraries; deploy/runtime_packages.py BINARY... prints the whole list)")
        if unneeded:
            problems.append(f"remove {', '.join(unneeded)} from deploy/Dockerfile's apt-get install (no binary "
                            "needs it)")
        if problems:
            self.fail("; ".join(problems))

    def test_binaries_are_copied_where_the_chart_runs_them(self):
        copies = [rest.split() for kind, rest in self.instructions
                  if kind == "COPY" and not rest.startswith("--from=")]
        self.assertEqual(1, len(copies))
        *sources, destination = copies[0]
        self.assertEqual(sorted(BINARIES.values()), sorted(sources))
        templates = os.path.dirname(cohort_services.runfile("charts/cohort/templates/_helpers.tpl"))
        commands = set()
        for template in glob.glob(os.path.join(templates, "**", "*.yaml"), recursive=True):
            with open(template) as f:
                commands |= set(re.findall(r'command: \["([^"]+)"\]', f.read()))
        self.assertTrue(commands)
        self.assertLessEqual(commands, {destination + name for name in BINARIES})

    def test_the_consoles_front_end_is_copied_where_the_chart_points_it(self):
        copies = [rest.split() for kind, rest in self.instructions if kind == "COPY" and rest.startswith("--from=")]
        with open(cohort_services.runfile("charts/cohort/values.yaml")) as f:
            assets_dir = yaml.safe_load(f)["console"]["assetsDir"]
        self.assertEqual([[f"--from={ASSETS_CONTEXT}", ".", assets_dir.rstrip("/") + "/"]], copies)
        with open(cohort_services.runfile("deploy/build_image.sh")) as f:
            self.assertIn(f"--build-context {ASSETS_CONTEXT}=", f.read())

    def test_the_user_is_the_one_the_chart_runs_as(self):
        users = [rest.strip() for kind, rest in self.instructions if kind == "USER"]
        with open(cohort_services.runfile("charts/cohort/values.yaml")) as f:
            context = yaml.safe_load(f)["podSecurityContext"]
        self.assertEqual([f"{context['runAsUser']}:{context['runAsGroup']}"], users)
        self.assertTrue(any(f"--uid {context['runAsUser']}" in rest for kind, rest in self.instructions if kind == "RUN"))


class Container:
    """One container of the image, run in the foreground as a child of the test (so its
    ready line is read from its stdout), named so that teardown removes it."""

    def __init__(self, test, name, command, args, mounts, env=()):
        self.name = f"cohort-image-test-{os.getpid()}-{name}"
        argv = [*PODMAN_FLAGS, "run", "--rm", "--name", self.name, "--network=host", *ULIMITS,
                *test.security_flags, "--read-only-tmpfs=false", *mounts]
        for variable in env:
            argv += ["--env", variable]
        argv += ["--entrypoint", command, test.image, *args]
        test.containers.append(self.name)
        self.process = cohort_services.ServiceProcess(test.podman, argv, ready_timeout=60.0)
        self.grpc_address = self.process.grpc_address

    def terminate(self, grace):
        """SIGTERM (proxied by `podman run` to the container's PID 1), as the kubelet
        sends it; returns (exit status, seconds until the container ended). A container
        still running after `grace` seconds is killed (status -9)."""
        start = time.monotonic()
        status = self.process.stop(grace=grace)
        return status, time.monotonic() - start


class HttpContainer:
    """The console's container, run in the foreground like Container; ready once it has
    printed `listening http=HOST:PORT metrics=HOST:PORT`."""

    _READY = re.compile(r"^listening http=(\S+) metrics=(\S+)$")

    def __init__(self, test, name, argv_tail, ready_timeout=60.0):
        self.name = f"cohort-image-test-{os.getpid()}-{name}"
        test.containers.append(self.name)
        self.http_address = self.metrics_address = None
        self._lines = []
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            [test.podman, *PODMAN_FLAGS, "run", "--rm", "--name", self.name, "--network=host", *ULIMITS,
             *test.security_flags, "--read-only-tmpfs=false", *argv_tail],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(ready_timeout) or self.http_address is None:
            self.terminate(5)
            raise AssertionError(f"{self.name} printed no ready line within {ready_timeout} s; stdout: {self._lines}")

    def _drain(self):
        for line in self._proc.stdout:
            self._lines.append(line.rstrip("\n"))
            match = self._READY.match(self._lines[-1])
            if match and self.http_address is None:
                self.http_address, self.metrics_address = match.groups()
                self._ready.set()
        self._ready.set()

    def terminate(self, grace):
        """SIGTERM, as Container.terminate: (exit status, seconds until it ended)."""
        start = time.monotonic()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._reader.join()
        self._proc.stdout.close()
        return self._proc.returncode, time.monotonic() - start


def http_get(url):
    """(status, content type, body) of a GET from the host."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


class ImageTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.podman = shutil.which("podman")
        if cls.podman is None:
            raise unittest.SkipTest("podman is not installed (apt-get install podman runc uidmap): the image is not run")
        info = _run([cls.podman, *PODMAN_FLAGS, "info"])
        if info.returncode != 0:
            raise unittest.SkipTest(f"podman cannot run on this machine: {info.stderr.strip()[:300]}")
        cls.tmp = tempfile.mkdtemp(prefix="image-", dir=os.environ.get("TEST_TMPDIR"))
        cls.containers = []
        cls.volumes = []
        cls.image = cls.build_image()
        probe = _run([cls.podman, *PODMAN_FLAGS, "run", "--rm", *ULIMITS, "--entrypoint", "/usr/local/bin/cohortctl",
                      cls.image, "--help"])
        if probe.returncode == 125:  # podman's own failure, not the command's
            raise unittest.SkipTest(f"podman cannot run a container on this machine: {probe.stderr.strip()[:300]}")
        cls.chart = os.path.join(cls.tmp, "cohort")
        shutil.copytree(cohort_services.runfile("charts/cohort"), cls.chart)
        cls.rendered = cls.render(["executor.allowExec[0]=/usr/local/bin/cohortctl", "console.enabled=true"])
        cls.security_flags = cls.security_flags_of(cls.rendered)

    @classmethod
    def tearDownClass(cls):
        for name in getattr(cls, "containers", []):
            _run([cls.podman, *PODMAN_FLAGS, "rm", "--force", "--ignore", name])
        for volume in getattr(cls, "volumes", []):
            _run([cls.podman, "volume", "rm", "--force", volume])
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    @classmethod
    def build_image(cls):
        """deploy/build_image.sh on this build's binaries, unless an image of the same
        inputs exists. Returns the image's name."""
        inputs = hashlib.sha256()
        web = cohort_services.runfile(WEB_SOURCES)
        sources = sorted(os.path.relpath(os.path.join(d, f), cohort_services.runfile(""))
                         for d, _, files in os.walk(web, followlinks=True) for f in files)
        for path in [*(f"services/{p}" for p in sorted(BINARIES.values())), "deploy/Dockerfile",
                     "deploy/build_image.sh", "deploy/runtime_packages.py", "charts/cohort/Chart.yaml", *sources]:
            with open(cohort_services.runfile(path), "rb") as f:
                inputs.update(path.encode() + b"\0" + hashlib.sha256(f.read()).digest())
        tag = "test-" + inputs.hexdigest()[:16]
        start = time.monotonic()
        result = _run(["bash", cohort_services.runfile("deploy/build_image.sh"),
                       f"--binaries={cohort_services.runfile('services')}", f"--tag={tag}",
                       "--revision=test", "--no-output", "--if-missing"])
        if result.returncode != 0:
            raise AssertionError(f"deploy/build_image.sh failed:\n{result.stderr[-3000:]}")
        print(f"image localhost/cohort:{tag} ready in {time.monotonic() - start:.1f} s", file=sys.stderr)
        return f"localhost/cohort:{tag}"

    @classmethod
    def render(cls, sets=()):
        argv = [HELM, "template", "rel", cls.chart, "--namespace", "jobs"]
        for s in sets:
            argv += ["--set", s]
        result = _run(argv)
        if result.returncode != 0:
            raise AssertionError(f"helm template: {result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    @staticmethod
    def workload(objects, kind, suffix):
        found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
        assert len(found) == 1, (kind, suffix, len(found))
        return found[0]

    @classmethod
    def security_flags_of(cls, objects):
        """podman flags for the chart's pod and container securityContext, which must be
        the same for every component (asserted)."""
        contexts = set()
        for kind, suffix in [("StatefulSet", "-broker"), ("StatefulSet", "-scheduler"), ("Deployment", "-executor"),
                             ("Deployment", "-console")]:
            pod = cls.workload(objects, kind, suffix)["spec"]["template"]["spec"]
            contexts.add(json.dumps([pod["securityContext"], pod["containers"][0]["securityContext"]], sort_keys=True))
        assert len(contexts) == 1, contexts
        pod, container = json.loads(contexts.pop())
        assert pod["runAsNonRoot"] and container["readOnlyRootFilesystem"], (pod, container)
        assert container["capabilities"] == {"drop": ["ALL"]}, container
        assert container["allowPrivilegeEscalation"] is False, container
        return ["--user", f"{pod['runAsUser']}:{pod['runAsGroup']}", "--read-only", "--cap-drop=all",
                "--security-opt=no-new-privileges"]

    def new_volume(self):
        name = f"cohort-image-test-{os.getpid()}-{len(self.volumes)}"
        result = _run([self.podman, "volume", "create", name])
        self.assertEqual(0, result.returncode, result.stderr)
        self.volumes.append(name)
        return name

    def start(self, kind, suffix, overrides, claims=None):
        """Starts the rendered workload's container with its command and arguments, then
        `overrides` (later flags win). Each volume mount becomes a podman volume (a
        PersistentVolumeClaim: from `claims`, by volume name, or a new one) or a tmpfs
        (an emptyDir)."""
        workload = self.workload(self.rendered, kind, suffix)
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claim_names = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        claims = {} if claims is None else claims
        mounts = []
        for mount in container.get("volumeMounts", []):
            if mount["name"] in claim_names:
                claims.setdefault(mount["name"], self.new_volume())
                mounts += ["--volume", f"{claims[mount['name']]}:{mount['mountPath']}"]
            else:
                self.assertIn("emptyDir", volumes[mount["name"]], mount)
                mounts += ["--tmpfs", mount["mountPath"]]
        env = [f"{e['name']}={e['value']}" for e in container.get("env", []) if "value" in e]
        env += [f"{e['name']}={POD_NAME}" for e in container.get("env", [])
                if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"]
        args = [a.replace("$(POD_NAME)", POD_NAME) for a in container["args"]] + overrides
        started = Container(self, suffix.strip("-"), container["command"][0], args, mounts, env)
        started.grace = pod["terminationGracePeriodSeconds"]
        started.claims = claims
        return started

    def cohortctl(self, broker, *args):
        return _run([_binary("cohortctl"), f"--server={broker.grpc_address}", "--timeout=20s", *args], timeout=120)

    def stop_all(self, containers):
        """SIGTERMs the containers, last started first; each must exit 0 within its
        terminationGracePeriodSeconds."""
        for container in reversed(containers):
            status, seconds = container.terminate(container.grace)
            self.assertEqual(0, status, f"{container.name} exit status")
            self.assertLess(seconds, container.grace, container.name)

    # --- the image itself ---------------------------------------------------------------

    def test_image_has_the_oci_labels_the_user_and_no_package_manager_or_shell(self):
        inspect = _run([self.podman, "image", "inspect", self.image])
        self.assertEqual(0, inspect.returncode, inspect.stderr)
        config = json.loads(inspect.stdout)[0]["Config"]
        labels = config["Labels"]
        for key in ("source", "revision", "version"):
            self.assertTrue(labels.get(f"org.opencontainers.image.{key}"), key)
        self.assertEqual("test", labels["org.opencontainers.image.revision"])
        with open(cohort_services.runfile("charts/cohort/Chart.yaml")) as f:
            self.assertEqual(yaml.safe_load(f)["appVersion"], labels["org.opencontainers.image.version"])
        self.assertEqual("10001:10001", config["User"])
        container = _run([self.podman, *PODMAN_FLAGS, "create", self.image])
        self.assertEqual(0, container.returncode, container.stderr)
        try:
            export = subprocess.run([self.podman, "export", container.stdout.strip()], capture_output=True, check=True)
        finally:
            _run([self.podman, "rm", "--force", container.stdout.strip()])
        listing = subprocess.run(["tar", "-t"], input=export.stdout, capture_output=True, check=True)
        files = {"/" + f.decode().lstrip("./").rstrip("/") for f in listing.stdout.splitlines()}
        self.assertLessEqual({f"/usr/local/bin/{name}" for name in BINARIES}, files)
        assets_dir = self.container_args(self.workload(self.rendered, "Deployment", "-console"))["assets-dir"]
        self.assertIn(f"{assets_dir}/index.html", files)
        self.assertTrue(any(f.startswith(f"{assets_dir}/assets/") and f.endswith(".js") for f in files), assets_dir)
        for absent in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/dpkg", "/usr/bin/apt-get", "/usr/bin/gcc",
                       "/usr/bin/cc", "/usr/bin/perl"):
            self.assertNotIn(absent, files)
        self.assertEqual(set(), {f for f in files if f.startswith("/var/lib/apt/") or f.startswith("/var/cache/apt/")})

    def test_cohortctl_and_cohort_dev_run_in_the_image(self):
        result = _run([self.podman, *PODMAN_FLAGS, "run", "--rm", *ULIMITS, *self.security_flags,
                       "--entrypoint", "/usr/local/bin/cohortctl", self.image, "--help"])
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn("usage: cohortctl", result.stdout)
        dev = Container(self, "dev", "/usr/local/bin/cohort-dev",
                        ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=/var/lib/cohort/dev"],
                        ["--volume", f"{self.new_volume()}:/var/lib/cohort", "--tmpfs", "/tmp"])
        dev.grace = 30
        try:
            result = self.cohortctl(dev, "submit", "--wait", "default", "builtin.echo", "from cohort-dev")
            self.assertEqual(0, result.returncode, result.stderr)
            self.assertEqual("from cohort-dev", result.stdout.strip())
        finally:
            self.stop_all([dev])

    # --- the chart's components ----------------------------------------------------------

    def test_components_run_with_the_charts_arguments_answer_health_and_run_jobs(self):
        local = ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"]
        started = [self.start("StatefulSet", "-broker", local)]
        broker = started[0]
        try:
            started.append(self.start("StatefulSet", "-scheduler", local + [f"--broker={broker.grpc_address}"]))
            started.append(self.start("Deployment", "-executor", local + [f"--broker={broker.grpc_address}"]))
            for container in started:
                self.assertEqual(1, health(container.grpc_address), f"{container.name}: not SERVING")

            echo = self.cohortctl(broker, "submit", "--wait", "default", "builtin.echo", "hello from the host")
            self.assertEqual(0, echo.returncode, echo.stderr)
            self.assertEqual("hello from the host", echo.stdout.strip())
            # An exec job forks the image's own program, as uid 10001 on the read-only root.
            run = self.cohortctl(broker, "submit", "--wait", "default", "exec", "--", "/usr/local/bin/cohortctl", "--help")
            self.assertEqual(0, run.returncode, run.stderr)
            self.assertIn("usage: cohortctl", run.stdout)
        finally:
            self.stop_all(started)

    @staticmethod
    def container_args(workload):
        args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
        return dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in args)

    def test_console_serves_its_page_api_and_metrics_from_the_image(self):
        local = ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"]
        started = [self.start("StatefulSet", "-broker", local)]
        broker = started[0]
        console = None
        try:
            started.append(self.start("StatefulSet", "-scheduler", local + [f"--broker={broker.grpc_address}"]))
            workload = self.workload(self.rendered, "Deployment", "-console")
            pod = workload["spec"]["template"]["spec"]
            container = pod["containers"][0]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            mounts = []
            for mount in container.get("volumeMounts", []):
                self.assertIn("emptyDir", volumes[mount["name"]], mount)  # stateless
                mounts += ["--tmpfs", mount["mountPath"]]
            args = container["args"] + local + [f"--broker={broker.grpc_address}",
                                                f"--scheduler={started[1].grpc_address}"]
            console = HttpContainer(self, "console", [*mounts, "--entrypoint", container["command"][0],
                                                      self.image, *args])
            submitted = self.cohortctl(broker, "submit", "parked", "builtin.echo", "seen by the console")
            self.assertEqual(0, submitted.returncode, submitted.stderr)

            status, content_type, page = http_get(f"http://{console.http_address}/")
            self.assertEqual(200, status)
            self.assertIn("text/html", content_type)
            script = re.search(r'src="(/assets/[^"]+\.js)"', page)
            self.assertIsNotNone(script, page[:500])
            status, content_type, _ = http_get(f"http://{console.http_address}{script.group(1)}")
            self.assertEqual((200, True), (status, "javascript" in content_type), content_type)
            # The API reads the containerised broker: the parked queue is listed.
            status, _, queues = http_get(f"http://{console.http_address}/api/queues")
            self.assertEqual(200, status, queues[:500])
            self.assertIn('"parked"', queues)
            status, _, metrics = http_get(f"http://{console.metrics_address}/metrics")
            self.assertEqual(200, status)
            self.assertIn("cohort_console_http_requests_total", metrics)

            grace = pod["terminationGracePeriodSeconds"] if "terminationGracePeriodSeconds" in pod else 30
            exit_status, seconds = console.terminate(grace)
            console = None
            self.assertEqual(0, exit_status, "cohort-console exit status")
            self.assertLess(seconds, grace)
        finally:
            if console is not None:
                console.terminate(5)
            self.stop_all(started)

    def test_broker_data_survives_a_new_container_on_the_same_volume(self):
        local = ["--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"]
        first = self.start("StatefulSet", "-broker", local)
        try:
            # No executor serves this queue: the job stays queued in the broker's store.
            submitted = self.cohortctl(first, "submit", "parked", "builtin.echo", "kept")
            self.assertEqual(0, submitted.returncode, submitted.stderr)
            job_id = submitted.stdout.strip()
            self.assertTrue(job_id)
        finally:
            self.stop_all([first])
        second = self.start("StatefulSet", "-broker", local, claims=first.claims)
        try:
            shown = self.cohortctl(second, "--output=json", "get", job_id)
            self.assertEqual(0, shown.returncode, shown.stderr)
            job = json.loads(shown.stdout)
            self.assertIn(job_id, json.dumps(job))
            self.assertIn('"parked"', json.dumps(job))
        finally:
            self.stop_all([second])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", help="unused: every component runs from the one image")
    args, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
