#!/usr/bin/python3
"""EagleRank's Locust test (seed 000) against 3 ranking replicas, through bulwark and direct.

Starts redis-server (the feature store), 3 ranking-server replicas and bulwark with
examples/ranking/bulwark.yaml (addresses rewritten), runs Debian's Locust headless with the gRPC
users of locustfile.py, and prints Locust's table per tenant. The direct pass gives each user a
channel to one replica picked at random: per-connection balancing, what a ClusterIP Service does.
Exit status 1 when the bulwark pass misses a threshold of scenario.yaml, 2 on a setup error.
"""
import csv
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "scenarios"))

from lib import seedrun  # noqa: E402
from lib.backends import Backends  # noqa: E402
from lib.bulwark import BulwarkProxy  # noqa: E402
from lib.procs import Supervisor  # noqa: E402


def seconds(text):
    text = str(text)
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "").isdigit():
            return float(text[: -len(suffix)]) * scale
    return float(text)


def read_stats(prefix):
    """Locust's <prefix>_stats.csv as {name: {...}} (times in ms)."""
    rows = {}
    with open(prefix + "_stats.csv") as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            count = int(row["Request Count"])
            rows[name] = {
                "requests": count,
                "failures": int(row["Failure Count"]),
                "failure_rate": int(row["Failure Count"]) / count if count else 0.0,
                "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"] or 0),
                "p90_ms": float(row["90%"] or 0),
                "p99_ms": float(row["99%"] or 0),
                "max_ms": float(row["Max Response Time"] or 0),
            }
    return rows


def run_locust(cfg, targets, pb_dir, prefix, log_path):
    loc = cfg["locust"]
    env = dict(os.environ, RANK_TARGET=",".join(targets), RANK_PB_DIR=pb_dir,
               RANK_DEADLINE_MS=str(loc.get("deadline_ms", 1000)))
    argv = ["locust", "-f", os.path.join(HERE, "locustfile.py"), "--headless", "--only-summary",
            "-u", str(loc["users"]), "-r", str(loc["spawn_rate"]), "-t", str(loc["run_time"]),
            "--csv", prefix, "--exit-code-on-error", "0"]
    with open(log_path, "w") as log:
        subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=seconds(loc["run_time"]) + 60)
    return read_stats(prefix)


def one_pass(mode, cfg, build_dir, run_dir, pb_dir):
    pass_dir = os.path.join(run_dir, mode)
    os.makedirs(pass_dir, exist_ok=True)
    with Supervisor(os.path.join(pass_dir, "logs")) as sup:
        backends = Backends(sup, build_dir, pass_dir, cfg["backends"])
        backends.start()
        if mode == "bulwark":
            proxy = BulwarkProxy(sup, build_dir, os.path.join(ROOT, cfg["proxy"]["bulwark"]), pass_dir)
            targets = [proxy.start(backends.endpoints())]
        else:
            targets = backends.addresses("ranking")
        print(f"  {mode}: locust {cfg['locust']['users']} users -> {', '.join(targets)}", flush=True)
        return run_locust(cfg, targets, pb_dir, os.path.join(pass_dir, "locust"), os.path.join(pass_dir, "locust.log"))


def table(results):
    lines = ["| pass | name | requests | failures | rps | p50 ms | p90 ms | p99 ms | max ms |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, rows in results.items():
        for name, r in rows.items():
            lines.append(f"| {mode} | {name} | {r['requests']} | {r['failures']} ({100 * r['failure_rate']:.2f}%) "
                         f"| {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    return "\n".join(lines)


def check(expect, agg):
    failed = []
    if agg["p99_ms"] > expect["p99_ms"]:
        failed.append(f"p99 {agg['p99_ms']:.0f} ms > {expect['p99_ms']} ms")
    if agg["failure_rate"] > expect["failure_rate"]:
        failed.append(f"failure rate {100 * agg['failure_rate']:.2f}% > {100 * expect['failure_rate']:.2f}%")
    if agg["rps"] < expect["min_rps"]:
        failed.append(f"rps {agg['rps']:.1f} < {expect['min_rps']}")
    return failed


def main():
    args, cfg, run_dir = seedrun.start(__doc__, os.path.join(HERE, "scenario.yaml"), "eaglerank",
                                       lambda p: p.add_argument("--passes", default="bulwark,direct",
                                                                help="comma list of bulwark, direct"))
    pb_dir = os.path.join(run_dir, "pb")
    os.makedirs(pb_dir, exist_ok=True)
    print(f"{cfg['name']}: {cfg['locust']['users']} users, {cfg['locust']['run_time']}, results in {run_dir}", flush=True)
    results = {}
    try:
        subprocess.run(["protoc", "-I", os.path.join(ROOT, "examples", "ranking"), "--python_out", pb_dir,
                        os.path.join(ROOT, "examples", "ranking", "ranking.proto")], check=True)
        for mode in [m.strip() for m in args.passes.split(",") if m.strip()]:
            results[mode] = one_pass(mode, cfg, args.build_dir, run_dir, pb_dir)
    except (subprocess.SubprocessError, RuntimeError, OSError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    failed = check(cfg["expect"], results["bulwark"]["Aggregated"]) if "bulwark" in results else []
    return seedrun.finish(run_dir, cfg, table(results), {"results": results}, failed,
                          f"bulwark pass, {cfg['expect']}")


if __name__ == "__main__":
    sys.exit(main())
