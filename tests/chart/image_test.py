"""deploy/Dockerfile against what it packages (no Docker engine here, so the image is
not built): its runtime packages provide every shared library that the real binaries
(of the services in tests/dashboard/services.bzl) need, every one of them is a
Debian 12 package, it copies every binary to where the chart runs it, and its user is
the one the chart's securityContext names.
"""

import argparse
import os
import re
import subprocess
import sys
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard"))

import cohort_services  # noqa: E402

SERVICES = []  # from --services
# In debian:bookworm-slim already.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def _output(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _packages_of(paths):
    """{path: the Debian package owning it}, from one dpkg -S (with usrmerge, a file
    under /lib is registered under /usr/lib or the other way round: both are asked)."""
    candidates = {path: [os.path.realpath(path), "/usr" + path, path] for path in paths}
    asked = sorted({c for cs in candidates.values() for c in cs})
    result = subprocess.run(["dpkg", "-S", *asked], capture_output=True, text=True)
    owner = {}
    for line in result.stdout.splitlines():
        package, path = line.split(": ", 1)
        owner[path] = package.split(":")[0]
    return {path: next((owner[c] for c in cs if c in owner), None) for path, cs in candidates.items()}


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(cohort_services.runfile("deploy/Dockerfile")) as f:
            # Continuation lines joined, comments dropped.
            text = re.sub(r"\\\n", " ", "".join(l for l in f if not l.lstrip().startswith("#")))
        cls.instructions = [line.split(None, 1) for line in text.splitlines() if line.strip()]
        installs = [
            m.group(1) for kind, rest in cls.instructions if kind == "RUN" for m in [re.search(r"apt-get install ([^&]+)", rest)] if m
        ]
        cls.packages = {p for install in installs for p in install.split() if not p.startswith("-")}

    def test_the_base_is_debian_12(self):
        self.assertEqual("FROM", self.instructions[0][0])
        self.assertRegex(self.instructions[0][1], r"^debian:bookworm(-slim)?$")

    def test_every_package_is_a_debian_12_package(self):
        self.assertTrue(self.packages)
        # Known to apt (Debian 12's archive) or installed here (this is Debian 12).
        shown = subprocess.run(["apt-cache", "show", "--no-all-versions", *self.packages], capture_output=True, text=True)
        known = set(re.findall(r"^Package: (\S+)$", shown.stdout, re.MULTILINE))
        installed = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\n", *self.packages], capture_output=True, text=True)
        known |= set(installed.stdout.split())
        self.assertEqual(set(), self.packages - known, "not Debian packages")

    def test_packages_provide_every_library_the_binaries_need(self):
        soname_paths = {}
        for line in _output(["ldconfig", "-p"]).splitlines()[1:]:
            match = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
            if match and "x86-64" in match.group(2):
                soname_paths.setdefault(match.group(1), match.group(3))
        for name in SERVICES:
            binary = cohort_services.runfile(f"services/{name}/cohort-{name}")
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _output(["readelf", "-d", binary]))
            self.assertTrue(needed, binary)
            missing = [soname for soname in needed if soname not in soname_paths]
            self.assertEqual([], missing, f"{name}: libraries ldconfig does not know")
            owners = _packages_of(soname_paths[soname] for soname in needed)
            unprovided = {
                soname: owners[soname_paths[soname]]
                for soname in needed
                if owners[soname_paths[soname]] not in self.packages | BASE_PACKAGES
            }
            self.assertEqual({}, unprovided, f"{name}: libraries whose packages the image does not install")

    def test_binaries_are_copied_where_the_chart_runs_them(self):
        copies = [rest.split() for kind, rest in self.instructions if kind == "COPY"]
        self.assertEqual(1, len(copies))
        *sources, destination = copies[0]
        self.assertEqual(
            sorted(f"{name}/cohort-{name}" for name in cohort_services.KNOWN_SERVICES), sorted(sources)
        )
        templates = os.path.dirname(cohort_services.runfile("charts/cohort/templates/_helpers.tpl"))
        commands = set()
        for template in os.listdir(templates):
            with open(os.path.join(templates, template)) as f:
                commands |= set(re.findall(r'command: \["([^"]+)"\]', f.read()))
        self.assertEqual({destination + f"cohort-{name}" for name in cohort_services.KNOWN_SERVICES}, commands)

    def test_the_user_is_the_one_the_chart_runs_as(self):
        users = [rest.strip() for kind, rest in self.instructions if kind == "USER"]
        with open(cohort_services.runfile("charts/cohort/values.yaml")) as f:
            context = yaml.safe_load(f)["podSecurityContext"]
        self.assertEqual([f"{context['runAsUser']}:{context['runAsGroup']}"], users)
        self.assertTrue(any(f"--uid {context['runAsUser']}" in rest for kind, rest in self.instructions if kind == "RUN"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", required=True, help="comma-separated, e.g. broker,executor")
    args, rest = parser.parse_known_args()
    SERVICES.extend(args.services.split(","))
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
