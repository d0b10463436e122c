"""The container image (deploy/build_image.sh), built for real from the binaries of this
build and run with podman as Kubernetes runs the chart's pods:

- static: deploy/Dockerfile installs exactly the packages deploy/runtime_packages.py
  derives from the binaries, copies the five binaries to where the chart runs them, and
  its user is the chart's;
- the image: OCI labels (source, revision, version), user 10001, the five binaries, and
  no shell, compiler or package manager;
- every component started with the arguments `helm template` renders (addresses
  overridden to 127.0.0.1:0: the containers share the host's network), as the chart's
  uid/gid, with a read-only root filesystem, every capability dropped, no privilege
  escalation, and a writable mount only where the chart mounts a volume (a podman volume
  for a PersistentVolumeClaim, a tmpfs for an emptyDir). The broker, scheduler and
  executor answer gRPC health from the host; echo and exec jobs submitted with the host's
  cohortctl run in the containerised executor; SIGTERM to each container ends it with
  status 0 within the chart's terminationGracePeriodSeconds;
- the broker's data directory survives a new container on the same volume.

The image is built once per set of inputs (binaries, Dockerfile, build script), tagged
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
import subprocess
import sys
import tempfile
import time
import unittest

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
}
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
        self.assertEqual(derived - SLIM_PACKAGES, listed - SLIM_PACKAGES)

    def test_binaries_are_copied_where_the_chart_runs_them(self):
        copies = [rest.split() for kind, rest in self.instructions if kind == "COPY"]
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
        cls.rendered = cls.render(["executor.allowExec[0]=/usr/local/bin/cohortctl"])
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
        for path in [*(f"services/{p}" for p in sorted(BINARIES.values())), "deploy/Dockerfile",
                     "deploy/build_image.sh", "deploy/runtime_packages.py", "charts/cohort/Chart.yaml"]:
            with open(cohort_services.runfile(path), "rb") as f:
                inputs.update(hashlib.sha256(f.read()).digest())
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
        for kind, suffix in [("StatefulSet", "-broker"), ("StatefulSet", "-scheduler"), ("Deployment", "-executor")]:
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
