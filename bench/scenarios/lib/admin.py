"""Small HTTP clients for the control planes: bulwark's admin port and the backends' fault port."""

import json
import time
import urllib.error
import urllib.request


class HttpAnswer:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    @property
    def ok(self):
        return 200 <= self.status < 300


def http(method, url, body=None, timeout=3.0):
    """One request; returns HttpAnswer (status 0 when nothing answered)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpAnswer(resp.status, resp.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        return HttpAnswer(e.code, e.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as e:
        return HttpAnswer(0, str(e))


def set_fault(control_port, spec):
    """Replaces a backend's whole fault spec (examples/common: POST /_fault; {} = all off)."""
    answer = http("POST", f"http://127.0.0.1:{control_port}/_fault", json.dumps(spec))
    if not answer.ok:
        raise RuntimeError(f"POST /_fault on control port {control_port}: {answer.status} {answer.body}")
    return answer


def set_health(control_port, serving):
    answer = http("POST", f"http://127.0.0.1:{control_port}/_fault/health", json.dumps({"serving": bool(serving)}))
    if not answer.ok:
        raise RuntimeError(f"POST /_fault/health on control port {control_port}: {answer.status} {answer.body}")
    return answer


def parse_prometheus(text):
    """Prometheus text format -> {(name, frozenset(labels)): value} (samples only, no comments)."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            head, value = line.rsplit(" ", 1)
            if "{" in head:
                name, rest = head.split("{", 1)
                labels = []
                for part in _split_labels(rest.rstrip("}")):
                    k, v = part.split("=", 1)
                    labels.append((k, v.strip('"')))
                key = (name, frozenset(labels))
            else:
                key = (head, frozenset())
            samples[key] = float(value)
        except ValueError:
            continue
    return samples


def _split_labels(text):
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


class BulwarkAdmin:
    """bulwark's admin endpoints (docs/configuration.md): /ready, /metrics, /config, POST /reload."""

    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def ready(self):
        return http("GET", self.base + "/ready", timeout=1.0).status == 200

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.05)
        return False

    def metrics(self):
        answer = http("GET", self.base + "/metrics")
        return parse_prometheus(answer.body) if answer.ok else {}

    def reload(self):
        return http("POST", self.base + "/reload")

    def config(self):
        """GET /config: the config in force, as JSON (None when it does not answer)."""
        answer = http("GET", self.base + "/config")
        return json.loads(answer.body) if answer.ok else None

    def upstreams(self):
        answer = http("GET", self.base + "/upstreams")
        return json.loads(answer.body) if answer.ok else None


# Counters that say what the proxy did for the client; summed over all labels except those given.
BULWARK_COUNTERS = {
    "retries": "bulwark_retries_total",
    "outlier_ejections": "bulwark_outlier_ejections_total",
    "fallbacks": "bulwark_fallback_responses_total",
    "bulkhead_rejected": "bulwark_bulkhead_rejected_total",
    "load_shed": "bulwark_load_shed_total",
    "breaker_rejected": "bulwark_circuit_breaker_rejected_total",
    "retry_budget_exhausted": "bulwark_retry_budget_exhausted_total",
    "local_replies": "bulwark_local_replies_total",
    "hedges": "bulwark_hedges_total",
}


def counter_totals(samples):
    out = {}
    for short, name in BULWARK_COUNTERS.items():
        out[short] = sum(v for (n, _labels), v in samples.items() if n == name)
    return out
