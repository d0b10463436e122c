"""TLS and token settings from cohortctl's config file and environment, against a real
cohort-broker serving TLS with --auth-tokens (its jobs run by a worker of the test's):
the client and the worker connect with nothing but the config file, the environment
wins over the file and explicit settings over both, and bad settings fail with errors
that name the file, never the token."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import AsyncIterator, Iterator

import grpc
import pytest

import cohort
from cohort import config
from cohort._target import channel_target
from conftest import CohortDev, broker_binary

TOKEN = "cohort_sdk-test-token-0123456789abcdefghijklmnopqrstu"
BOUND = 30.0


def openssl(*args: str) -> None:
    subprocess.run(["/usr/bin/openssl", *args], check=True, capture_output=True, timeout=60)


class Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 (as tests/security/certs.cc)."""

    def __init__(self, directory: Path) -> None:
        self.ca, ca_key = directory / "ca.pem", directory / "ca.key"
        self.cert, self.key = directory / "server.pem", directory / "server.key"
        csr, ext = directory / "server.csr", directory / "server.ext"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(self.ca), "-days", "2", "-subj", "/CN=sdk-ca")
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        openssl("req", *ec, "-keyout", str(self.key), "-out", str(csr), "-subj", "/CN=cohort-dev")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(self.cert), "-days", "2", "-extfile", str(ext))


class SecureDev:
    def __init__(self, directory: Path, server: CohortDev, pki: Pki) -> None:
        self.dir = directory
        self.server = server
        self.pki = pki

    @property
    def address(self) -> str:
        return self.server.address

    def write_config(self, name: str, text: str) -> str:
        path = self.dir / name
        path.write_text(text)
        return str(path)


@pytest.fixture(scope="module")
def secure_dev() -> Iterator[SecureDev]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
        directory = Path(tmp)
        pki = Pki(directory)
        tokens = directory / "tokens"
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        tokens.write_text(f"sha256:{digest} principal=sdk scopes=submit,read,cancel,admin,execute executor=*\n")
        (directory / "data").mkdir()
        server = CohortDev(broker_binary(), str(directory / "data"), [
            f"--tls-cert={pki.cert}", f"--tls-key={pki.key}", f"--auth-tokens={tokens}"], broker=True)
        yield SecureDev(directory, server, pki)
        server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No COHORT_* variable, and a config home with no config file."""
    for name in list(os.environ):
        if name.startswith("COHORT_") and name != "COHORT_DEV":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return monkeypatch


@contextlib.asynccontextmanager
async def serving(target: str | None = None) -> AsyncIterator[None]:
    """A worker configured by the environment and config file (but for `target`), serving
    the queue "secure"."""
    worker = cohort.Worker(target, queues=["secure"], executor_id="secure-worker", concurrency=1)

    @worker.task("py.reverse")
    async def reverse(payload: bytes) -> bytes:
        return payload[::-1]

    running = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop("test over")
        await asyncio.wait_for(running, BOUND)


async def test_the_client_and_worker_connect_with_tls_and_token_from_the_config_file_alone(
        secure_dev: SecureDev, clean_env: pytest.MonkeyPatch) -> None:
    token_file = secure_dev.write_config("token", f"  {TOKEN}\n")
    path = secure_dev.write_config("config", f"""# written by the test
server = {secure_dev.address}
tls_ca = {secure_dev.pki.ca}

token_file = {token_file}
""")
    clean_env.setenv("COHORT_CONFIG", path)
    async with serving(), cohort.connect() as client:
        assert client.target == secure_dev.address
        job = await client.submit("secure", "py.reverse", "abc")
        assert await cohort.wait_for(job, BOUND) == b"cba"
        info = await job.info()
        assert info.submitted_by == "sdk"
        assert (info.attempts[0].executor_id, info.attempts[0].executor_principal) == ("secure-worker", "sdk")


async def test_without_the_token_the_broker_refuses_and_with_it_in_the_environment_it_accepts(
        secure_dev: SecureDev, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COHORT_CONFIG", secure_dev.write_config(
        "no-token", f"server = {secure_dev.address}\ntls_ca = {secure_dev.pki.ca}\n"))
    async with cohort.connect() as client:
        with pytest.raises(cohort.CohortError) as refused:
            await client.list_queues()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    clean_env.setenv("COHORT_TOKEN", TOKEN)
    async with cohort.connect() as client:
        assert isinstance(await client.list_queues(), list)


async def test_the_environment_wins_over_the_file_and_explicit_settings_over_both(
        secure_dev: SecureDev, clean_env: pytest.MonkeyPatch) -> None:
    # The file names a wrong token and a wrong server; the environment the right token;
    # the call the right server.
    clean_env.setenv("COHORT_CONFIG", secure_dev.write_config(
        "wrong", f"server = 127.0.0.1:1\ntls_ca = {secure_dev.pki.ca}\ntoken = cohort_wrong\n"))
    clean_env.setenv("COHORT_TOKEN", TOKEN)
    async with serving(secure_dev.address), cohort.connect(secure_dev.address) as client:
        assert await (await client.submit("secure", "py.reverse", "env")) == b"vne"
    # An explicit token beats the environment's.
    settings = cohort.Settings(token="cohort_also_wrong")
    async with cohort.connect(secure_dev.address, settings=settings) as client:
        with pytest.raises(cohort.CohortError) as refused:
            await client.list_queues()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_default_config_file_is_under_xdg_config_home_and_may_be_absent(tmp_path: Path) -> None:
    assert config.config_path({"XDG_CONFIG_HOME": "/x"}) == "/x/cohort/config"
    assert config.config_path({"HOME": "/home/u"}) == "/home/u/.config/cohort/config"
    assert config.config_path({"COHORT_CONFIG": "/etc/c", "XDG_CONFIG_HOME": "/x"}) == "/etc/c"
    assert config.resolve(env={"XDG_CONFIG_HOME": str(tmp_path)}) == cohort.Settings()
    with pytest.raises(cohort.ConfigError, match="COHORT_CONFIG"):
        config.resolve(env={"COHORT_CONFIG": str(tmp_path / "missing")})


def test_token_and_token_file_are_one_setting_taken_from_the_highest_source(tmp_path: Path) -> None:
    (tmp_path / "cohort").mkdir()
    (tmp_path / "cohort" / "config").write_text("token = from-file\nserver = file:1\ntls_ca = /ca\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path), "COHORT_TOKEN_FILE": "/run/token", "COHORT_SERVER": "env:2"}
    resolved = config.resolve(cohort.Settings(tls_ca="/mine"), env)
    assert resolved == cohort.Settings(server="env:2", tls_ca="/mine", token_file="/run/token")
    assert config.resolve(cohort.Settings(token="explicit"), env).token_file is None


def test_paths_in_the_file_are_relative_to_it_or_to_home(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("tls_ca = certs/ca.pem\ntoken_file = ~/token\n")
    resolved = config.resolve(env={"COHORT_CONFIG": str(path), "HOME": "/home/u"})
    assert (resolved.tls_ca, resolved.token_file) == (str(tmp_path / "certs" / "ca.pem"), "/home/u/token")


@pytest.mark.parametrize("text, message", [
    ("server 127.0.0.1:7070\n", r":1: expected `key = value`"),
    ("# ok\n\ntls_ca = /a\ncolour = blue\n", r':4: unknown key "colour": use server, scheduler, tls_ca'),
    ("server = a:1\n\nserver = b:2\n", r':3: "server" is set twice \(first on line 1\)'),
    ("token =\n", r':1: "token" has no value'),
])
def test_a_malformed_config_file_names_the_file_and_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(cohort.ConfigError, match=str(path) + message):
        config.resolve(env={"COHORT_CONFIG": str(path)})


def test_unusable_files_are_config_errors_that_never_quote_the_token(tmp_path: Path) -> None:
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    with pytest.raises(cohort.ConfigError, match=f"token file {empty} is empty"):
        cohort.connect("127.0.0.1:1", settings=cohort.Settings(token_file=str(empty)))
    with pytest.raises(cohort.ConfigError, match="tls_ca file /nonexistent/ca.pem cannot be read"):
        cohort.connect("127.0.0.1:1", settings=cohort.Settings(tls_ca="/nonexistent/ca.pem"))
    with pytest.raises(cohort.ConfigError, match="tls_cert and tls_key go together"):
        cohort.connect("127.0.0.1:1", settings=cohort.Settings(tls_ca="/a", tls_cert="/b"))
    path = tmp_path / "config"
    path.write_text(f"token {TOKEN}\n")
    with pytest.raises(cohort.ConfigError) as raised:
        config.resolve(env={"COHORT_CONFIG": str(path)})
    assert TOKEN not in str(raised.value)


def test_a_server_list_is_one_address_list_target_over_the_replicas() -> None:
    assert channel_target("127.0.0.1:7001") == "127.0.0.1:7001"
    assert channel_target("broker.cohort:7070") == "broker.cohort:7070"
    assert channel_target("127.0.0.1:7001, 127.0.0.1:7002") == "ipv4:127.0.0.1:7001,127.0.0.1:7002"
    assert channel_target("[::1]:7001,[::1]:7002") == "ipv6:[::1]:7001,[::1]:7002"
    for bad, says in [("127.0.0.1:7001,", "is invalid"), ("127.0.0.1:7001,127.0.0.1:0", "1..65535"),
                      ("127.0.0.1:7001,broker-1.cohort:7002", "IP addresses only"),
                      ("127.0.0.1:7001,[::1]:7002", "all IPv4 or all IPv6"),
                      ("127.0.0.1:7001,127.0.0.1:7001", "twice"), (",".join(["127.0.0.1:1"] * 17), "at most 16")]:
        with pytest.raises(cohort.ConfigError, match=re.escape(says)):
            config.open_channel(bad, cohort.Settings())
