#!/usr/bin/python3
"""Fluxor's load / spike / stress shapes (seed 004) through bulwark, with the seed's thresholds.

For each shape of shapes.yaml: fresh backends (3 replicas of each example service), bulwark with
examples/edge.yaml, one open-loop bulwark-loadgen run over the shape's phases (ramps included), then
the seed's checks: p95 and error rate over the judged phases, every request answered quickly in the
burst, and (stress) the breaking point: the highest offered rate whose second stayed under the
thresholds. Writes report.json and summary.md; exit status 1 when a threshold is missed.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "scenarios"))

from lib import seedrun  # noqa: E402
from lib.backends import Backends  # noqa: E402
from lib.bulwark import BulwarkProxy  # noqa: E402
from lib.loadgen import LoadSpec, find_loadgen, read_report  # noqa: E402
from lib.procs import Supervisor  # noqa: E402
from lib.scenario import parse_duration  # noqa: E402

UNANSWERED = ("timeout", "overflow", "connect", "reset")


def error_rate(stats):
    sent = stats.get("sent", 0)
    return (sent - stats.get("ok", 0)) / sent if sent else 1.0


def answered_rate(stats):
    sent = stats.get("sent", 0)
    lost = sum(v for k, v in stats.get("errors", {}).items() if k in UNANSWERED)
    return (sent - lost) / sent if sent else 0.0


def offered_rate(phase, t_in_phase):
    text = str(phase["rps"])
    if "-" in text:
        lo, hi = (float(x) for x in text.split("-"))
        return lo + (hi - lo) * t_in_phase / parse_duration(phase["duration"])
    return float(text)


def breaking_point(shape, report, expect):
    """Highest offered rate of a second that met the thresholds (p99 of the second stands in for p95,
    which the per-second timeline does not carry: stricter, never kinder)."""
    best = None
    starts, t = [], 0.0
    for p in shape["phases"]:
        starts.append((t, p))
        t += parse_duration(p["duration"])
    for sec in report.get("timeline", []):
        phase_start, phase = max((s for s in starts if s[0] <= sec["t"]), key=lambda s: s[0])
        if phase["name"] != shape["phases"][0]["name"]:
            continue
        sent = sec.get("sent", 0)
        errors = sent - sec.get("ok", 0)
        if sent and errors / sent <= expect["error_rate"] and sec.get("p99_ms", 1e9) <= expect["p95_ms"]:
            rate = offered_rate(phase, sec["t"] - phase_start)
            best = rate if best is None else max(best, rate)
    return best


def run_shape(cfg, name, shape, build_dir, run_dir):
    shape_dir = os.path.join(run_dir, name)
    os.makedirs(shape_dir, exist_ok=True)
    traffic = cfg["traffic"]
    with Supervisor(os.path.join(shape_dir, "logs")) as sup:
        backends = Backends(sup, build_dir, shape_dir, cfg["backends"])
        backends.start()
        proxy = BulwarkProxy(sup, build_dir, os.path.join(ROOT, cfg["proxy"]["bulwark"]), shape_dir)
        target = proxy.start(backends.endpoints())
        spec = LoadSpec(name, traffic["protocol"], traffic["requests"], traffic["connections"],
                        parse_duration(traffic["timeout"]), traffic["max_queue"])
        requests_file = spec.write_requests(os.path.join(shape_dir, "requests.json"))
        json_out = os.path.join(shape_dir, "loadgen.json")
        argv = spec.argv(find_loadgen(build_dir), [target], [], requests_file, json_out, cfg.get("seed", 1))
        for p in shape["phases"]:
            argv += ["--phase", f"{p['name']}:{p['rps']}:{p['duration']}"]
        total = sum(parse_duration(p["duration"]) for p in shape["phases"])
        print(f"  {name}: {' -> '.join(str(p['rps']) for p in shape['phases'])} req/s over {total:.0f}s via {target}",
              flush=True)
        gen = sup.start(f"loadgen-{name}", argv)
        if gen.wait(total + 60) != 0:
            raise RuntimeError(f"bulwark-loadgen failed:\n{gen.output()}")
        counters = proxy.counters()
    return read_report(json_out), counters


def judge(name, shape, report):
    expect = shape["expect"]
    phases = {p["name"]: p for p in report["phases"]}
    failed, rows = [], []
    for p in report["phases"]:
        lat = p.get("latency_ms", {})
        rows.append({"shape": name, "phase": p["name"], "sent": p["sent"], "ok": p["ok"], "degraded": p.get("degraded", 0),
                     "error_rate": error_rate(p), "answered": answered_rate(p), "achieved_rps": p.get("achieved_rps", 0),
                     "p50_ms": lat.get("p50", 0), "p95_ms": lat.get("p95", 0), "p99_ms": lat.get("p99", 0),
                     "errors": p.get("errors", {})})
    for phase_name in shape["judge"]:
        p = phases[phase_name]
        p95 = p.get("latency_ms", {}).get("p95", 1e9)
        if p95 > expect["p95_ms"]:
            failed.append(f"{name}/{phase_name}: p95 {p95:.1f} ms > {expect['p95_ms']} ms")
        if error_rate(p) > expect["error_rate"]:
            failed.append(f"{name}/{phase_name}: error rate {100 * error_rate(p):.2f}% > {100 * expect['error_rate']:.2f}%")
    burst = shape.get("burst_expect")
    if burst:
        p = phases[burst["phase"]]
        p99 = p.get("latency_ms", {}).get("p99", 1e9)
        if p99 > burst["p99_ms"]:
            failed.append(f"{name}/{burst['phase']}: p99 {p99:.0f} ms > {burst['p99_ms']} ms")
        if answered_rate(p) < burst["answered"]:
            failed.append(f"{name}/{burst['phase']}: answered {100 * answered_rate(p):.2f}% < {100 * burst['answered']:.1f}%")
    return rows, failed


def table(rows):
    lines = ["| shape | phase | sent | ok | fallbacks | error rate | answered | rps | p50 ms | p95 ms | p99 ms |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['phase']} | {r['sent']} | {r['ok']} | {r['degraded']} | {100 * r['error_rate']:.2f}% "
                     f"| {100 * r['answered']:.2f}% | {r['achieved_rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} |")
    return "\n".join(lines)


def main():
    args, cfg, run_dir = seedrun.start(__doc__, os.path.join(HERE, "shapes.yaml"), "fluxor",
                                       lambda p: p.add_argument("--shapes", default="load,spike,stress"))
    print(f"{cfg['name']}: results in {run_dir}", flush=True)
    rows, failed, breaking, counters = [], [], {}, {}
    try:
        for name in [s.strip() for s in args.shapes.split(",") if s.strip()]:
            shape = cfg["shapes"][name]
            report, counters[name] = run_shape(cfg, name, shape, args.build_dir, run_dir)
            shape_rows, shape_failed = judge(name, shape, report)
            rows += shape_rows
            failed += shape_failed
            if name == "stress":
                breaking[name] = breaking_point(shape, report, shape["expect"])
    except (subprocess.SubprocessError, RuntimeError, OSError, KeyError) as error:
        print(f"setup failed: {error!r}", file=sys.stderr)
        return 2
    notes = "".join(f"\n\nBreaking point ({k}): {'%.0f req/s' % v if v else 'below the first second'} offered, "
                    f"the highest rate whose second kept p99 <= {cfg['shapes'][k]['expect']['p95_ms']} ms and errors "
                    f"<= {100 * cfg['shapes'][k]['expect']['error_rate']:.1f}%." for k, v in breaking.items())
    return seedrun.finish(run_dir, cfg, table(rows) + notes,
                          {"rows": rows, "breaking_point_rps": breaking, "bulwark_counters": counters}, failed,
                          "the seed's, per shape")


if __name__ == "__main__":
    sys.exit(main())
