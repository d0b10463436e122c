"""A real Prometheus (Debian's /usr/bin/prometheus) scraping the services of a test.

PrometheusServer writes a config with one scrape job per service (job names
cohort-broker, cohort-scheduler, cohort-executor, as the chart's ServiceMonitor names
them and the alert rules expect), a short scrape and rule-evaluation interval and the
given rule files, starts Prometheus on a free 127.0.0.1 port with its TSDB in a temp
dir, and returns once /-/ready answers. query() and rules() call its HTTP API.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

PROMETHEUS = "/usr/bin/prometheus"
# Straight to 127.0.0.1, whatever *_proxy variables the environment has.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusError(Exception):
    """The API answered with an error, or not at all."""


class PrometheusServer:
    """One Prometheus child process. `jobs` maps a scrape job name to its targets
    (HOST:PORT of /metrics). Not thread-safe."""

    def __init__(self, jobs, rule_files, workdir, interval="1s", ready_timeout=60.0):
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "rule_files": list(rule_files),
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in jobs.items()
            ],
        }
        self._workdir = workdir
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML.
        self._proc = None
        # The free port may be taken between our probe and Prometheus's bind: retry then.
        for attempt in range(3):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            log_path = os.path.join(workdir, f"prometheus-{attempt}.log")
            with open(log_path, "w") as log:
                self._proc = subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._await_ready(ready_timeout):
                return
            with open(log_path) as log:
                output = log.read()
            self.stop()
            if "address already in use" not in output:
                raise PrometheusError(f"prometheus did not become ready: {output}")
        raise PrometheusError("prometheus found no free port in 3 tries")

    def _await_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with _OPENER.open(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def _get(self, path, params=None):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with _OPENER.open(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise PrometheusError(f"GET {url}: {e}") from e
        if body.get("status") != "success":
            raise PrometheusError(f"GET {url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr):
        """Evaluates `expr` now: the list of {"metric": labels, "value": [t, "v"]}
        (an instant vector), or a one-element list for a scalar. Raises
        PrometheusError for a query Prometheus rejects."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] == "vector":
            return data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise PrometheusError(f"{expr}: unexpected result type {data['resultType']}")

    def metric_names(self):
        """Every metric name Prometheus holds series of."""
        return set(self._get("/api/v1/label/__name__/values"))

    def rules(self):
        """Every loaded rule as Prometheus reports it (name, query, health, lastError...)."""
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def alerts(self):
        """Every active alert (pending or firing): {"labels": ..., "state": ..., "value": ...}."""
        return self._get("/api/v1/alerts")["alerts"]

    def stop(self):
        """Stops Prometheus (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
