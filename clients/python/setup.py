"""Builds the cohort package: the messages and gRPC stubs are generated from Cohort's
protos (protos/cohort/v1/*.proto) at build time and never committed.

The protos are found at $COHORT_PROTO_ROOT, or two directories up from here (the
repository's root, where `pip install ./clients/python` finds them). Generation uses
Debian's protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc),
or $PROTOC / $GRPC_PYTHON_PLUGIN.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTOS = ["job", "executor", "broker", "scheduler"]
HERE = Path(__file__).resolve().parent
# The protos import each other by workspace path (protos/cohort/v1/job.proto): the
# generated modules are moved into cohort._proto and their imports rewritten.
IMPORT = re.compile(r"^from protos\.cohort\.v1 import ", re.MULTILINE)


def proto_root() -> Path:
    root = Path(os.environ.get("COHORT_PROTO_ROOT", HERE.parent.parent))
    if not (root / "protos/cohort/v1/broker.proto").is_file():
        raise SystemExit(f"cohort: no protos/cohort/v1/broker.proto under {root}: set COHORT_PROTO_ROOT")
    return root


def generate(out: Path) -> None:
    root = proto_root()
    protoc = os.environ.get("PROTOC", shutil.which("protoc") or "/usr/bin/protoc")
    plugin = os.environ.get("GRPC_PYTHON_PLUGIN", shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [protoc, f"-I{root}", "-I/usr/include", f"--python_out={tmp}", f"--pyi_out={tmp}",
             f"--grpc_python_out={tmp}", f"--plugin=protoc-gen-grpc_python={plugin}",
             *(f"protos/cohort/v1/{p}.proto" for p in PROTOS)],
            check=True, cwd=root)
        out.mkdir(parents=True, exist_ok=True)
        for generated in sorted((Path(tmp) / "protos/cohort/v1").iterdir()):
            text = IMPORT.sub("from cohort._proto import ", generated.read_text())
            (out / generated.name).write_text(text)


class BuildWithProtos(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / "cohort" / "_proto")


setup(cmdclass={"build_py": BuildWithProtos})
