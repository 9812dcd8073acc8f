#!/usr/bin/python3
"""recsys-service's sizing runs (seed 003) with examples/recommendation/loadtest.sh, direct and via bulwark.

For each tier of sizing.yaml: start the tier's recommendation replicas (and bulwark in front of
them), run loadtest.sh for each endpoint straight at replica 0 and then through bulwark, and
measure what the seed's table asks for: rps, p95, CPU (cores used by the serving processes during
the run, from /proc) and memory (their peak RSS). Prints the seed's table for each path, writes
report.json and summary.md. Exit status 1 when a bulwark run misses a threshold, 2 on setup errors.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "scenarios"))

from lib import seedrun  # noqa: E402
from lib.backends import Backends  # noqa: E402
from lib.bulwark import BulwarkProxy  # noqa: E402
from lib.procs import Supervisor  # noqa: E402

LOADTEST = os.path.join(ROOT, "examples", "recommendation", "loadtest.sh")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def loadtest(base_url, endpoint, tenant, surface, k, requests, concurrency):
    env = dict(os.environ, BASE_URL=base_url, ENDPOINT=endpoint, TENANT_ID=tenant, SURFACE=surface, K=str(k),
               REQUESTS=str(requests), CONCURRENCY=str(concurrency), OUTPUT="json")
    return subprocess.Popen(["sh", LOADTEST], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def measure(cfg, tier, endpoint, base_url, pids):
    """One loadtest.sh per tenant at once; CPU and memory of `pids` over the run."""
    cpu_before = sum(cpu_seconds(p) for p in pids)
    started = time.monotonic()
    procs = [loadtest(base_url, endpoint, t, cfg["surface"], cfg["k"], tier["requests"], tier["concurrency"])
             for t in tier["tenants"]]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"loadtest.sh failed ({p.returncode}): {err.strip()}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.monotonic() - started
    cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
    total = sum(r["requests"] for r in results)
    errors = sum(r["error_rate"] * r["requests"] for r in results)
    return {
        "rps": sum(r["rps"] for r in results),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p95_ms": max(r["p95_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "error_rate": errors / total if total else 1.0,
        "requests": total,
        "cpu_cores": cpu / wall if wall > 0 else 0.0,
        "memory_mib": sum(peak_rss_mib(p) for p in pids),
        "statuses": [r.get("statuses", {}) for r in results],
    }


def run_tier(cfg, tier, build_dir, run_dir):
    tier_dir = os.path.join(run_dir, tier["name"])
    os.makedirs(tier_dir, exist_ok=True)
    rows = []
    with Supervisor(os.path.join(tier_dir, "logs")) as sup:
        backends = Backends(sup, build_dir, tier_dir,
                            {"replicas": tier["replicas"], "services": {"recommendation": {"args": tier.get("args", [])}}})
        backends.start()
        proxy = BulwarkProxy(sup, build_dir, os.path.join(ROOT, "examples", "recommendation", "bulwark.yaml"), tier_dir)
        proxy_address = proxy.start(backends.endpoints())
        replica_pids = [r.proc.pid for r in backends.replicas["recommendation"]]
        for endpoint in cfg["endpoints"]:
            for path in ("direct", "bulwark"):
                if path == "direct":
                    base, pids = f"http://{backends.replicas['recommendation'][0].address}", replica_pids[:1]
                else:
                    base, pids = f"http://{proxy_address}", replica_pids + [proxy.proc.pid]
                m = measure(cfg, tier, endpoint, base, pids)
                m.update(tier=tier["name"], notes=tier["notes"], endpoint=endpoint, path=path,
                         replicas=1 if path == "direct" else tier["replicas"])
                print(f"  {tier['name']:6} {endpoint:14} {path:8} rps={m['rps']:7.1f} p95={m['p95_ms']:6.1f}ms "
                      f"err={100 * m['error_rate']:.2f}% cpu={m['cpu_cores']:.2f} mem={m['memory_mib']:.0f}MiB", flush=True)
                rows.append(m)
    return rows


def sizing_table(rows, path, endpoint):
    lines = [f"**{endpoint}, {'through bulwark' if path == 'bulwark' else 'direct to one replica'}**", "",
             "| Tier  | Target QPS | p95 Latency | CPU | Memory | Notes              |",
             "| :---- | ---------: | ----------: | --: | -----: | ------------------ |"]
    for r in rows:
        if r["path"] == path and r["endpoint"] == endpoint:
            notes = f"{r['notes']}; {r['replicas']} replica(s), {len(r['statuses'])} tenant(s), err {100 * r['error_rate']:.2f}%"
            lines.append(f"| {r['tier']} | {r['rps']:.0f} | {r['p95_ms']:.1f} ms | {r['cpu_cores']:.2f} cores "
                         f"| {r['memory_mib']:.0f} MiB | {notes} |")
    return "\n".join(lines)


def main():
    args, cfg, run_dir = seedrun.start(__doc__, os.path.join(HERE, "sizing.yaml"), "recsys",
                                       lambda p: p.add_argument("--tiers", default=None,
                                                                help="comma list of tier names (default: all)"))
    wanted = set(args.tiers.split(",")) if args.tiers else None
    tiers = [t for t in cfg["tiers"] if wanted is None or t["name"] in wanted]
    print(f"{cfg['name']}: tiers {', '.join(t['name'] for t in tiers)}; results in {run_dir}", flush=True)
    rows = []
    try:
        for tier in tiers:
            rows += run_tier(cfg, tier, args.build_dir, run_dir)
    except (subprocess.SubprocessError, RuntimeError, OSError, ValueError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    expect = cfg["expect"]
    failed = [f"{r['tier']} {r['endpoint']}: p95 {r['p95_ms']:.1f} ms, errors {100 * r['error_rate']:.2f}%"
              for r in rows if r["path"] == "bulwark"
              and (r["p95_ms"] > expect["p95_ms"] or r["error_rate"] > expect["error_rate"])]
    tables = "\n\n".join(sizing_table(rows, path, ep) for ep in cfg["endpoints"] for path in ("direct", "bulwark"))
    return seedrun.finish(run_dir, cfg, tables, {"rows": rows}, failed, f"bulwark runs, {expect}")


if __name__ == "__main__":
    sys.exit(main())
