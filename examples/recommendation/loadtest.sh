#!/bin/sh
# Load test for recommendation-server, directly or through bulwark, with the interface of the
# seed's scripts/loadtest.sh (recsys-service "Performance and capacity guide"):
#
#   BASE_URL=http://127.0.0.1:8082 ENDPOINT=/v1/recommend TENANT_ID=demo SURFACE=home K=20 \
#   REQUESTS=1000 CONCURRENCY=25 examples/recommendation/loadtest.sh
#
# Env: BASE_URL (default http://localhost:8000), ENDPOINT (/v1/recommend | /v1/similar),
# TENANT_ID (demo), SURFACE (home), K (20), REQUESTS (1000), CONCURRENCY (25),
# DEV_HEADERS (true: send X-Tenant-Id), BEARER_TOKEN / API_KEY (sent when set),
# TIMEOUT_S (per request, 5), MAX_SECONDS (whole run, 120), OUTPUT (text | json).
# Prints rps, p50/p95/p99 latency (ms) and the error rate (non-2xx + timeouts + resets).
# Uses only Debian's python3 (threads and http.client, one keep-alive connection per worker).
set -eu
export BASE_URL="${BASE_URL:-http://localhost:8000}"
export ENDPOINT="${ENDPOINT:-/v1/recommend}"
export TENANT_ID="${TENANT_ID:-demo}"
export SURFACE="${SURFACE:-home}"
export K="${K:-20}"
export REQUESTS="${REQUESTS:-1000}"
export CONCURRENCY="${CONCURRENCY:-25}"
export DEV_HEADERS="${DEV_HEADERS:-true}"
export BEARER_TOKEN="${BEARER_TOKEN:-}"
export API_KEY="${API_KEY:-}"
export TIMEOUT_S="${TIMEOUT_S:-5}"
export MAX_SECONDS="${MAX_SECONDS:-120}"
export OUTPUT="${OUTPUT:-text}"

exec /usr/bin/python3 - <<'PY'
import http.client, json, os, sys, threading, time, urllib.parse

env = os.environ
url = urllib.parse.urlsplit(env["BASE_URL"])
if url.scheme != "http":
    sys.exit("loadtest.sh: only http:// base URLs are supported")
host, port = url.hostname, url.port or 80
endpoint = env["ENDPOINT"]
tenant, surface, k = env["TENANT_ID"], env["SURFACE"], int(env["K"])
total, concurrency = int(env["REQUESTS"]), max(1, int(env["CONCURRENCY"]))
timeout, max_seconds = float(env["TIMEOUT_S"]), float(env["MAX_SECONDS"])

headers = {"Content-Type": "application/json"}
if env["DEV_HEADERS"] == "true":
    headers["X-Tenant-Id"] = tenant
if env["BEARER_TOKEN"]:
    headers["Authorization"] = "Bearer " + env["BEARER_TOKEN"]
if env["API_KEY"]:
    headers["X-API-Key"] = env["API_KEY"]

def body(i):
    request = {"tenant": tenant, "surface": surface, "k": k}
    if endpoint.endswith("/similar"):
        request["item_id"] = "%s-item-%05d" % (tenant, i % 1000)
    else:
        request["user_id"] = "user-%d" % (i % 5000)
    return json.dumps(request)

lock = threading.Lock()
next_index = [0]
latencies, statuses = [], {}
deadline = time.monotonic() + max_seconds

def take():
    with lock:
        if next_index[0] >= total or time.monotonic() >= deadline:
            return None
        next_index[0] += 1
        return next_index[0] - 1

def record(status, seconds):
    with lock:
        statuses[status] = statuses.get(status, 0) + 1
        if seconds is not None:
            latencies.append(seconds)

def worker():
    conn = None
    while True:
        i = take()
        if i is None:
            break
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        start = time.monotonic()
        try:
            conn.request("POST", endpoint, body=body(i), headers=headers)
            response = conn.getresponse()
            response.read()
            record(str(response.status), time.monotonic() - start)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except TimeoutError:
            record("timeout", None)
            conn.close()
            conn = None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            record(type(e).__name__, None)
            conn.close()
            conn = None
    if conn is not None:
        conn.close()

threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
started = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()) + timeout + 1)
elapsed = max(time.monotonic() - started, 1e-9)

done = sum(statuses.values())
ok = sum(n for s, n in statuses.items() if s.isdigit() and 200 <= int(s) < 300)
latencies.sort()
def pct(p):
    if not latencies:
        return float("nan")
    return 1000 * latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))]
result = {
    "requests": done, "concurrency": concurrency, "duration_s": round(elapsed, 3),
    "rps": round(done / elapsed, 1),
    "p50_ms": round(pct(50), 2), "p95_ms": round(pct(95), 2), "p99_ms": round(pct(99), 2),
    "error_rate": round((done - ok) / done, 4) if done else 1.0,
    "statuses": dict(sorted(statuses.items())),
}
if env["OUTPUT"] == "json":
    print(json.dumps(result))
else:
    print("requests=%d concurrency=%d duration_s=%.3f" % (done, concurrency, elapsed))
    print("rps=%.1f" % result["rps"])
    print("p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f" % (result["p50_ms"], result["p95_ms"], result["p99_ms"]))
    print("error_rate=%.4f (non-2xx + timeouts + resets)" % result["error_rate"])
    print("statuses: " + " ".join("%s=%d" % kv for kv in result["statuses"].items()))
if done < total:
    print("loadtest.sh: stopped after MAX_SECONDS=%g with %d of %d requests" % (max_seconds, done, total), file=sys.stderr)
PY
