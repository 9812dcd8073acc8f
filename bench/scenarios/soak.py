#!/usr/bin/python3
"""The soak: the chaos demo's machinery (3 replicas of each example backend, Redis, bulwark with
examples/edge.yaml, bench/loadgen) for a long run. Steady mixed HTTP/1.1, h2c and gRPC traffic, the
60 s fault cycle of soak.yaml on a loop (replica errors, slow replica, replica killed and restarted,
feature store down) and a reload swapping between two configs once a minute; ctest -L soak.

  bench/scenarios/soak.py [--seconds 1200] [--build-dir build]
  BULWARK_SOAK_SECONDS=180 bench/scenarios/soak.py      # the shortest run the checks allow

Passes when
  * bulwark's RSS grew < 5 % after warm-up: RSS (VmRSS) is sampled every 2 s; the first 15 % of
    the cycles (at least one) are warm-up; baseline = the largest sample of the first cycle after
    warm-up, end = the largest sample of the last cycle (whole cycles compared, so every fault
    phase is in both);
  * bulwark's open fds return to their count before the load (+ a tolerance, --fd-tolerance)
    once the load stopped and pooled upstream connections hit their idle timeout (waited for,
    with a deadline);
  * every request got an answer: each generator's answered count equals its sent count (errors
    from bulwark or a faulty replica are answers; timeouts, resets, refused connections and
    overflows are not);
  * every reload applied (bulwark_config_reloads_total counted it, /config shows the swapped
    values) and every fault event fired;
  * bulwark ran to the end, exited 0 on SIGTERM, and its stderr holds no sanitizer report (ASan,
    LSan at exit, UBSan, TSan: the sanitized builds of BULWARK_SANITIZE).

Writes report.json and summary.md into the run directory (--out-root/soak-<time>/, with every
process's log); exits 0 on a pass, 1 on a failed check, 2 on a setup error.
"""

import argparse
import math
import os
import re
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench.scenarios.lib import yamlio  # noqa: E402
from bench.scenarios.lib.procs import StartupError  # noqa: E402
from bench.scenarios.lib.runner import run_pass, save_json  # noqa: E402
from bench.scenarios.lib.scenario import Scenario, ScenarioError, parse_duration  # noqa: E402

# Outcomes a generator counts that are not an answer from the proxy (bench/loadgen/README.md).
UNANSWERED_KINDS = ("timeout", "reset", "connect", "overflow", "protocol")
# Lines a sanitizer runtime writes on a finding (its summary line, or UBSan's diagnostics).
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|WARNING: ThreadSanitizer|"
                              r"SUMMARY: \w+Sanitizer|runtime error: ")


def log(msg):
    print(msg, flush=True)


class SoakFailure(RuntimeError):
    """bulwark died during the run: a failed soak, not a setup error."""


class SoakWatch:
    """The runner's observer: samples bulwark's RSS and fds while the load runs; once it ended,
    waits for the fds to return to baseline and stops bulwark to read its exit status and stderr."""

    def __init__(self, sample_interval, fd_tolerance, fd_deadline_s):
        self.sample_interval = sample_interval
        self.fd_tolerance = fd_tolerance
        self.fd_deadline_s = fd_deadline_s
        self.samples = []  # (seconds since load start, rss KiB, open fds)
        self.proxy = None
        self.t0 = None
        self.next_sample = 0.0
        self.fd_baseline = None
        self.fd_baseline_kinds = None
        self.rss_before_load = None
        self.after = {}

    def _bulwark(self):
        proc = self.proxy.proc
        if not proc.alive():
            raise SoakFailure(f"bulwark exited with {proc.returncode()} during the soak\n{proc.output()}")
        return proc

    def started(self, _backends, proxy):
        # The fd baseline: bulwark ready, no load yet. Counted until it holds still for 2 s (a
        # health check opens a connection for each check, milliseconds long, and closes it).
        self.proxy = proxy
        proc = self._bulwark()
        deadline = time.monotonic() + 20.0
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            kinds = proc.open_fds()
            count = sum(kinds.values())
            if count != last:
                last, since = count, time.monotonic()
                self.fd_baseline_kinds = kinds
            elif time.monotonic() - since >= 2.0:
                break
            time.sleep(0.1)
        self.fd_baseline = last
        self.rss_before_load = proc.rss_kib()
        log(f"  before the load: bulwark pid {proc.pid}, RSS {self.rss_before_load / 1024:.1f} MiB, "
            f"{self.fd_baseline} open fds {self.fd_baseline_kinds}")
        self.t0 = time.monotonic()

    def tick(self):
        now = time.monotonic()
        if now < self.next_sample:
            return
        self.next_sample = now + self.sample_interval
        proc = self._bulwark()
        rss, kinds = proc.rss_kib(), proc.open_fds()
        if rss is not None and kinds is not None:
            self.samples.append((round(now - self.t0, 2), rss, sum(kinds.values())))

    def load_done(self, _backends, proxy):
        proc = self._bulwark()
        self.after["load_end_rss_kib"] = proc.rss_kib()
        self.after["load_end_fds"] = sum(proc.open_fds().values())
        # Client connections close with the generators; pooled upstream connections at their idle
        # timeout. Wait for the count, with a deadline.
        started = time.monotonic()
        limit = self.fd_baseline + self.fd_tolerance
        kinds = proc.open_fds()
        while sum(kinds.values()) > limit and time.monotonic() - started < self.fd_deadline_s:
            time.sleep(0.5)
            kinds = self._bulwark().open_fds()
        self.after["fds"] = sum(kinds.values())
        self.after["fd_kinds"] = kinds
        self.after["fd_wait_s"] = round(time.monotonic() - started, 1)
        self.after["rss_kib"] = proc.rss_kib()
        log(f"  after the load: {self.after['load_end_fds']} open fds at its end, {self.after['fds']} "
            f"{self.after['fd_wait_s']:.0f} s later {kinds}")
        # SIGTERM: bulwark drains (drain.minDuration) and exits; LeakSanitizer reports at exit.
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        self.after["exit_code"] = proc.wait(90.0)
        self.after["exit_s"] = round(time.monotonic() - started, 1)
        reports = []
        for p in proxy.processes():
            with open(p.err_path, errors="replace") as f:
                for line in f:
                    if SANITIZER_REPORT.search(line):
                        reports.append(f"{os.path.basename(p.err_path)}: {line.rstrip()}")
        self.after["sanitizer_reports"] = reports
        self.after["stderr_files"] = [p.err_path for p in proxy.processes()]


def loads_summary(result, scenario):
    """Per generator: protocol, sent, answered, ok, errors by kind, unanswered, max send lag."""
    out = {}
    for name, report in result["load"].items():
        total = report["total"]
        errors = total.get("errors", {})
        out[name] = {
            "protocol": scenario.services[name].protocol,
            "service": scenario.services[name].service,
            "sent": total.get("sent", 0),
            "completed": total.get("completed", 0),
            "answered": total.get("answered", 0),
            "ok": total.get("ok", 0),
            "degraded": total.get("degraded", 0),
            "errors": errors,
            "unanswered": {k: v for k, v in errors.items() if k in UNANSWERED_KINDS and v},
            "interrupted": report.get("run", {}).get("interrupted", False),
            "unprocessed_retries": report.get("run", {}).get("unprocessed_retries", 0),
            "max_send_lag_ms": report.get("run", {}).get("max_send_lag_ms"),
            "p99_ms": total.get("latency_ms", {}).get("p99"),
        }
    return out


def rss_windows(samples, cycle_s, warmup_cycles, cycles):
    """(baseline, end) = the largest RSS sample of the first cycle after warm-up and of the last."""
    def largest(first, last):
        values = [rss for t, rss, _fds in samples if first * cycle_s <= t < last * cycle_s]
        return max(values) if values else None
    return largest(warmup_cycles, warmup_cycles + 1), largest(cycles - 1, cycles)


def sanitizer_of(build_dir):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("BULWARK_SANITIZE:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def evaluate(args, scenario, result, watch, warmup_cycles):
    checks = []  # (name, ok, detail)
    loads = loads_summary(result, scenario)

    baseline, end = rss_windows(watch.samples, scenario.cycle_duration, warmup_cycles, scenario.cycles)
    if baseline is None or end is None:
        checks.append(("rss", False, "no RSS samples in the baseline or the last cycle"))
    else:
        growth = (end - baseline) / baseline * 100
        checks.append(("rss", growth < args.rss_growth_max,
                       f"RSS after warm-up {baseline / 1024:.1f} MiB (cycle {warmup_cycles + 1}), last cycle "
                       f"{end / 1024:.1f} MiB: {growth:+.2f} % (bound < {args.rss_growth_max:g} %)"))

    a = watch.after
    limit = watch.fd_baseline + args.fd_tolerance
    checks.append(("fds", a["fds"] <= limit,
                   f"open fds {a['fds']} {a['fd_wait_s']:.0f} s after the load (baseline {watch.fd_baseline} before it, "
                   f"bound {limit}; {a['load_end_fds']} at the load's end)"
                   + ("" if a["fds"] <= limit else f"; now {a['fd_kinds']}, before {watch.fd_baseline_kinds}")))

    for name, row in loads.items():
        ok = row["answered"] == row["sent"] and row["completed"] == row["sent"] and not row["unanswered"] \
            and not row["interrupted"]
        detail = f"{name} ({row['protocol']}): {row['answered']} of {row['sent']} answered"
        if row["unanswered"]:
            detail += f", unanswered {row['unanswered']}"
        checks.append((f"answered/{name}", ok, detail))

    reloads = [e for e in result["events"] if e["action"] == "reload"]
    failed_events = [e for e in result["events"] if "error" in e]
    checks.append(("events", not failed_events and len(reloads) == scenario.cycles,
                   f"{len(result['events'])} events fired ({len(reloads)} reloads), "
                   f"{len(failed_events)} failed"
                   + "".join(f"; t={e['at_s']:.0f}s {e['what']}: {e['error']}" for e in failed_events[:5])))

    checks.append(("exit", a["exit_code"] == 0,
                   f"bulwark ran to the end and exited {a['exit_code']} {a['exit_s']:.0f} s after SIGTERM"))
    reports = a["sanitizer_reports"]
    checks.append(("sanitizer", not reports,
                   f"no sanitizer report in bulwark's stderr (sanitizer: {sanitizer_of(args.build_dir) or 'none'})"
                   if not reports else f"{len(reports)} sanitizer lines, first: {reports[0]}"))
    return checks, loads, baseline, end


def markdown(scenario, args, watch, loads, checks, baseline, end, result, warmup_cycles, meta):
    a = watch.after
    lines = [f"Soak: {scenario.cycles} cycles of {scenario.cycle_duration:.0f} s ({scenario.duration / 60:.1f} min), "
             f"warm-up {warmup_cycles} cycle(s); `{meta['command']}`; build {meta['build']} "
             f"(sanitizer: {meta['sanitizer'] or 'none'}); commit {meta['commit']}; {meta['date']}; "
             f"load average {meta['loadavg_before']} before, {meta['loadavg_after']} after.", ""]
    # resent: requests the generator sent again because bulwark provably had not processed them
    # (REFUSED_STREAM, above a GOAWAY's last stream id, a keep-alive race), as a client does.
    lines += ["| generator | protocol | sent | answered | ok | errors (answers) | unanswered | resent | p99 ms | "
              "max send lag ms |",
              "|---|---|---:|---:|---:|---|---|---:|---:|---:|"]
    for name, r in loads.items():
        answered_errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items()) if k not in UNANSWERED_KINDS)
        lines.append(f"| {name} | {r['protocol']} | {r['sent']:,} | {r['answered']:,} | {r['ok']:,} | "
                     f"{answered_errors or '-'} | {', '.join(f'{k} {v}' for k, v in r['unanswered'].items()) or '0'} | "
                     f"{r['unprocessed_retries']} | {r['p99_ms'] if r['p99_ms'] is None else round(r['p99_ms'], 1)} | {r['max_send_lag_ms']} |")
    rss = [s[1] for s in watch.samples]
    kinds = {}
    for e in result["events"]:
        kinds[e["what"]] = kinds.get(e["what"], 0) + 1
    lines += ["",
              f"RSS: {watch.rss_before_load / 1024:.1f} MiB before the load, {baseline / 1024 if baseline else 0:.1f} MiB "
              f"after warm-up, {end / 1024 if end else 0:.1f} MiB in the last cycle, peak {max(rss) / 1024 if rss else 0:.1f} "
              f"MiB ({len(rss)} samples every {args.sample_interval:g} s).",
              f"Open fds: {watch.fd_baseline} before the load, {a['load_end_fds']} at its end, {a['fds']} "
              f"{a['fd_wait_s']:.0f} s later.",
              "Events: " + "; ".join(f"{what} x{n}" for what, n in kinds.items()) + ".", "",
              "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |" for name, ok, detail in checks]
    return "\n".join(lines)


def git_commit():
    try:
        import subprocess
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=os.path.join(ROOT, "bench", "scenarios", "soak.yaml"))
    ap.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BULWARK_SOAK_SECONDS", 1200)),
                    help="run length, rounded to whole cycles, at least 3 (default 1200, or BULWARK_SOAK_SECONDS)")
    ap.add_argument("--warmup", type=float, default=0.15, help="share of the cycles that is warm-up (at least one)")
    ap.add_argument("--rss-growth-max", type=float, default=5.0, help="percent")
    ap.add_argument("--fd-tolerance", type=int, default=0, help="fds above the baseline still accepted")
    ap.add_argument("--sample-interval", type=float, default=2.0)
    ap.add_argument("--out-root", default=os.path.join(ROOT, "bench", "results"),
                    help="the run directory soak-<time>/ goes here (default bench/results)")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)

    try:
        one = Scenario(args.scenario)
        cycles = max(3, round(args.seconds / one.duration))
        scenario = Scenario(args.scenario, cycles=cycles)
    except (ScenarioError, KeyError, OSError) as e:
        print(f"soak: {args.scenario}: {e}", file=sys.stderr)
        return 2
    warmup_cycles = max(1, math.ceil(args.warmup * cycles - 1e-9))
    if warmup_cycles > cycles - 2:
        print(f"soak: {cycles} cycles leave none after {warmup_cycles} of warm-up", file=sys.stderr)
        return 2
    # Pooled upstream connections close at their idle timeout (edge.yaml keeps bulwark's default).
    with open(os.path.join(ROOT, scenario.proxy.get("bulwark", "examples/edge.yaml"))) as f:
        edge = yamlio.load(f)
    pool_idle = max(parse_duration(u.get("connectionPool", {}).get("tcp", {}).get("idleTimeout", "60s"))
                    for u in edge["upstreams"])
    fd_deadline = pool_idle + 30.0

    run_dir = os.path.join(args.out_root, f"soak-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(run_dir, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(),
            "build": os.path.relpath(args.build_dir, ROOT), "sanitizer": sanitizer_of(args.build_dir),
            "command": " ".join([os.path.relpath(sys.argv[0], os.getcwd())] + sys.argv[1:]),
            "loadavg_before": " ".join(open("/proc/loadavg").read().split()[:3])}
    if os.environ.get("BULWARK_SOAK_SECONDS"):
        meta["command"] = f"BULWARK_SOAK_SECONDS={os.environ['BULWARK_SOAK_SECONDS']} " + meta["command"]
    log(f"soak: {cycles} cycles of {scenario.cycle_duration:.0f} s ({scenario.duration / 60:.1f} min), warm-up "
        f"{warmup_cycles}; loads: " + ", ".join(f"{n} {s.protocol} {s.rps:g}/s" for n, s in scenario.services.items())
        + f"; run directory {os.path.relpath(run_dir, os.getcwd())}")

    watch = SoakWatch(args.sample_interval, args.fd_tolerance, fd_deadline)
    try:
        result = run_pass(scenario, "bulwark", ROOT, args.build_dir, os.path.join(run_dir, "bulwark"), observer=watch)
    except KeyboardInterrupt:
        print("\nsoak: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except SoakFailure as e:
        print(f"\nsoak: FAIL: {e}", file=sys.stderr)
        print(f"soak: logs in {os.path.join(run_dir, 'bulwark', 'logs')}", file=sys.stderr)
        return 1
    except (StartupError, RuntimeError, FileNotFoundError, ScenarioError) as e:
        print(f"\nsoak: {e}", file=sys.stderr)
        print(f"soak: logs in {os.path.join(run_dir, 'bulwark', 'logs')}", file=sys.stderr)
        return 2
    meta["loadavg_after"] = " ".join(open("/proc/loadavg").read().split()[:3])

    checks, loads, baseline, end = evaluate(args, scenario, result, watch, warmup_cycles)
    text = markdown(scenario, args, watch, loads, checks, baseline, end, result, warmup_cycles, meta)
    failed = [c for c in checks if not c[1]]
    save_json(os.path.join(run_dir, "report.json"), {
        "meta": meta, "cycles": cycles, "cycle_s": scenario.cycle_duration, "warmup_cycles": warmup_cycles,
        "rss_baseline_kib": baseline, "rss_end_kib": end, "rss_before_load_kib": watch.rss_before_load,
        "fd_baseline": watch.fd_baseline, "fd_baseline_kinds": watch.fd_baseline_kinds, "after": watch.after,
        "samples": watch.samples, "loads": loads, "events": result["events"],
        "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks],
        "proxy_counters": result["proxy_counters"]})
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(f"# soak\n\n{text}\n")
    print()
    print(text)
    print()
    for name, ok, detail in failed:
        print(f"soak: FAIL {name}: {detail}")
    print(f"soak: {'PASS' if not failed else 'FAIL'}; report {os.path.relpath(run_dir, os.getcwd())}/summary.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
