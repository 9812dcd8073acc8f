#!/usr/bin/python3
"""The chaos scenario: steady load on the three example services with timed fault phases, run
through bulwark and again without protection (and, with --passes, through HAProxy).

  bench/scenarios/chaos.py [--scenario bench/scenarios/chaos.yaml] [--passes bulwark,direct]

Prints per phase and service the client success rate and p50/p99 of every pass side by side,
writes JSON, Markdown and PNG plots into the run directory, and exits 1 when a threshold of the
phase file is not met by the bulwark pass (2 on a setup error, 130 on Ctrl-C).
"""

import argparse
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench.scenarios.lib import tasklog  # noqa: E402
from bench.scenarios.lib.procs import StartupError  # noqa: E402
from bench.scenarios.lib.runner import run_pass, save_json  # noqa: E402
from bench.scenarios.lib.scenario import Scenario, ScenarioError  # noqa: E402

PASS_TITLES = {"bulwark": "through bulwark", "haproxy": "through HAProxy", "direct": "unprotected"}


def phase_rows(result):
    """{phase: {service: row}} of one pass, from the load generators' per-phase stats."""
    rows = {}
    for service, report in result["load"].items():
        for ph in report["phases"]:
            sent = ph.get("sent", 0)
            lat = ph.get("latency_ms", {})
            rows.setdefault(ph["name"], {})[service] = {
                "sent": sent,
                "ok": ph.get("ok", 0),
                "degraded": ph.get("degraded", 0),
                "success": ph.get("ok", 0) / sent if sent else float("nan"),
                "p50_ms": lat.get("p50"),
                "p99_ms": lat.get("p99"),
                "max_ms": lat.get("max"),
                "achieved_rps": ph.get("achieved_rps"),
                "target_rps": ph.get("target_rps"),
                "errors": ph.get("errors", {}),
            }
    return rows


def check_thresholds(scenario, rows):
    failures = []
    for phase in scenario.phases:
        for service, expect in phase.expect.items():
            row = rows.get(phase.name, {}).get(service)
            if row is None:
                failures.append(f"{phase.name}/{service}: no data")
                continue
            if "success" in expect and not row["success"] >= expect["success"]:
                failures.append(f"{phase.name}/{service}: success {row['success']:.2%} < {expect['success']:.2%}")
            if "p99_ms" in expect and row["p99_ms"] is not None and row["p99_ms"] > expect["p99_ms"]:
                failures.append(f"{phase.name}/{service}: p99 {row['p99_ms']:.1f} ms > {expect['p99_ms']:.0f} ms")
    return failures


def check_task_keys(result):
    """Every Idempotency-Key created at most one task (from the task replicas' shared log)."""
    keys = result.get("task_keys")
    if not keys or not keys["duplicate_keys"]:
        return []
    return [f"task log: {keys['duplicate_keys']} Idempotency-Keys created more than one task "
            f"(e.g. {', '.join(keys['duplicate_examples'])})"]


def fmt_pct(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return "100%" if x >= 0.99995 else f"{x * 100:.2f}%" if x >= 0.9 else f"{x * 100:.1f}%"


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def print_table(scenario, passes, out=sys.stdout):
    modes = list(passes)
    width = 26
    head1 = f"{'phase':<20} {'service':<15}" + "".join(f"| {PASS_TITLES.get(m, m):<{width - 2}}" for m in modes)
    head2 = f"{'':<20} {'':<15}" + "".join(f"| {'success':>8} {'p50':>6} {'p99':>7} " for _ in modes)
    print(head1, file=out)
    print(head2 + "  (ms)", file=out)
    print("-" * len(head2), file=out)
    rows = {m: phase_rows(passes[m]) for m in modes}
    for phase in scenario.phases:
        for i, service in enumerate(scenario.services):
            line = f"{phase.name if i == 0 else '':<20} {service:<15}"
            for m in modes:
                r = rows[m].get(phase.name, {}).get(service)
                if r is None:
                    line += f"| {'-':>8} {'-':>6} {'-':>7} "
                    continue
                line += f"| {fmt_pct(r['success']):>8} {fmt_ms(r['p50_ms']):>6} {fmt_ms(r['p99_ms']):>7} "
            print(line, file=out)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=os.path.join(ROOT, "bench", "scenarios", "chaos.yaml"))
    ap.add_argument("--passes", default="bulwark,direct",
                    help="comma-separated, run in order: bulwark, haproxy, direct (default bulwark,direct)")
    ap.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--run-dir", help="default bench/results/<scenario>-<time>/")
    ap.add_argument("--no-plots", action="store_true", help="JSON and Markdown only")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="multiplies every phase duration and event time (e.g. 0.5 for a quick look)")
    args = ap.parse_args()

    try:
        scenario = Scenario(args.scenario, args.time_scale)
    except (ScenarioError, KeyError, OSError) as e:
        print(f"chaos: {args.scenario}: {e}", file=sys.stderr)
        return 2
    modes = [m.strip() for m in args.passes.split(",") if m.strip()]
    run_dir = args.run_dir or os.path.join(ROOT, "bench", "results",
                                           f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(run_dir, exist_ok=True)
    build_dir = os.path.abspath(args.build_dir)

    total = scenario.duration
    print(f"{scenario.name}: {len(scenario.phases)} phases, {total:.0f}s per pass, passes: "
          f"{', '.join(PASS_TITLES.get(m, m) for m in modes)}; run directory {os.path.relpath(run_dir, os.getcwd())}")
    for p in scenario.phases:
        rates = ", ".join(f"{s} {r:g}" for s, r in p.rps.items())
        events = "; ".join(f"{e.at:g}s {e.describe()}" for e in p.events) or "-"
        print(f"  {p.start:5.0f}s {p.name:<20} {p.duration:4.0f}s  rps: {rates}  events: {events}")

    passes = {}
    try:
        for mode in modes:
            print(f"\n== pass: {PASS_TITLES.get(mode, mode)} ==", flush=True)
            passes[mode] = run_pass(scenario, mode, ROOT, build_dir, os.path.join(run_dir, mode))
    except KeyboardInterrupt:
        print("\nchaos: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except (StartupError, RuntimeError, FileNotFoundError, ScenarioError) as e:
        print(f"\nchaos: {e}", file=sys.stderr)
        print(f"chaos: logs in {os.path.join(run_dir, mode, 'logs')}", file=sys.stderr)
        return 2

    print()
    rows = print_table(scenario, passes)
    failures = check_thresholds(scenario, rows["bulwark"]) if "bulwark" in rows else []
    if "bulwark" in passes:
        failures += check_task_keys(passes["bulwark"])

    from bench.report import write_report
    report = {
        "scenario": scenario.name,
        "scenario_file": os.path.relpath(scenario.path, ROOT),
        "scenario_raw": scenario.raw,
        "phases": [{"name": p.name, "start_s": p.start, "duration_s": p.duration, "rps": p.rps,
                    "events": [e.raw for e in p.events], "expect": p.expect} for p in scenario.phases],
        "passes": passes,
        "rows": rows,
        "thresholds": {"checked_pass": "bulwark" if "bulwark" in rows else None, "failures": failures,
                       "peers": {m: check_thresholds(scenario, rows[m]) + check_task_keys(passes[m])
                                 for m in rows if m not in ("bulwark", "direct")}},
        "command": " ".join([os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:]),
        "created_unix": int(time.time()),
    }
    save_json(os.path.join(run_dir, "report.json"), report)
    paths = write_report(report, run_dir, plots=not args.no_plots)

    print()
    for mode in modes:
        if passes[mode].get("task_keys") is not None:
            print(f"task log, {PASS_TITLES.get(mode, mode)}: {tasklog.describe(passes[mode]['task_keys'])}")
    print()
    if failures:
        print(f"thresholds ({report['scenario_file']}, bulwark pass): {len(failures)} not met")
        for f in failures:
            print(f"  FAIL {f}")
    elif "bulwark" in rows:
        print(f"thresholds ({report['scenario_file']}, bulwark pass): all met")
    for mode, peer in report["thresholds"]["peers"].items():
        print(f"thresholds on the {PASS_TITLES.get(mode, mode)} pass (for comparison, not checked): "
              + (f"{len(peer)} not met" if peer else "all met"))
        for f in peer:
            print(f"  miss {f}")
    print("\nreport:")
    for p in [os.path.join(run_dir, "report.json")] + paths:
        print(f"  {os.path.relpath(p, os.getcwd())}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
