"""Reports of a scenario run: a Markdown summary and PNG plots (Debian's python3-matplotlib).

  write_report(report, run_dir, plots=True) -> [paths written]

`report` is the dict chaos.py saves as report.json: per pass (bulwark, haproxy, direct) the load
generators' JSON per service (per-phase stats and a per-second timeline keyed by intended send
time), the fault events with wall-clock times, and the proxy's counters per phase.

Also runnable on a saved run: python3 -m bench.report bench/results/chaos-<time>/
"""

import json
import math
import os
import platform
import subprocess

PASS_TITLES = {"bulwark": "through bulwark", "haproxy": "through HAProxy", "direct": "unprotected"}
PASS_COLORS = {"bulwark": "#1f77b4", "haproxy": "#2ca02c", "direct": "#d62728"}


def _pct(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return "100 %" if x >= 0.99995 else f"{x * 100:.2f} %"


def _ms(x):
    return "-" if x is None else (f"{x:.0f}" if x >= 100 else f"{x:.1f}")


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        pass
    return info


def markdown(report):
    passes = report["passes"]
    modes = list(passes)
    services = list(report["scenario_raw"]["load"])
    rows = report["rows"]
    m = report.get("machine") or machine()
    out = [f"# {report['scenario']}: per-phase results", ""]
    out.append(f"- Command: `{report['command']}` (scenario `{report['scenario_file']}`)")
    out.append(f"- Machine: {m.get('cpu', '?')}, {m.get('cpus')} CPUs, Linux {m.get('kernel')}, "
               f"load average {' '.join(m.get('loadavg', []))} at the end; commit {m.get('commit', '?')}")
    out.append(f"- Passes (sequential, same phases and traffic): "
               f"{', '.join(PASS_TITLES.get(x, x) for x in modes)}")
    out.append("- success = answers the client counted ok (2xx / grpc-status 0, including bulwark's "
               "marked fallbacks, shown as `fb`) over requests sent; p50/p99 in ms over every answered request.")
    out.append("")
    head = "| phase | service | " + " | ".join(f"{PASS_TITLES.get(x, x)}: success | p50 | p99" for x in modes) + " |"
    out.append(head)
    out.append("|---|---|" + "---:|---:|---:|" * len(modes))
    for ph in report["phases"]:
        for i, s in enumerate(services):
            cells = [ph["name"] if i == 0 else "", s]
            for x in modes:
                r = rows.get(x, {}).get(ph["name"], {}).get(s)
                if r is None:
                    cells += ["-", "-", "-"]
                    continue
                succ = _pct(r["success"])
                if r.get("degraded"):
                    succ += f" ({r['degraded'] / max(1, r['sent']):.0%} fb)"
                cells += [succ, _ms(r["p50_ms"]), _ms(r["p99_ms"])]
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    th = report.get("thresholds", {})
    if th.get("checked_pass"):
        fails = th.get("failures", [])
        out.append(f"Thresholds of `{report['scenario_file']}` on the {th['checked_pass']} pass: "
                   + ("all met." if not fails else f"{len(fails)} not met:"))
        out += [f"- {f}" for f in fails]
        out.append("")

    for peer, misses in th.get("peers", {}).items():
        out.append(f"The same thresholds on the {PASS_TITLES.get(peer, peer)} pass (for comparison): "
                   + ("all met." if not misses else f"{len(misses)} not met:"))
        out += [f"- {f}" for f in misses]
        out.append("")

    audited = [x for x in modes if passes[x].get("task_keys") is not None]
    if audited:
        from bench.scenarios.lib.tasklog import describe
        out.append("Task creates per Idempotency-Key (the task replicas' shared log; a key with more than one "
                   "task is a create executed twice):")
        out.append("")
        out += [f"- {PASS_TITLES.get(x, x)}: {describe(passes[x]['task_keys'])}" for x in audited]
        out.append("")

    out.append("Load generator health (largest lag of a send behind its schedule; beyond a few ms the "
               "machine, not the system under test, shaped the numbers):")
    out.append("")
    for x in modes:
        lags = ", ".join(f"{s} {passes[x]['load'][s].get('run', {}).get('max_send_lag_ms', float('nan')):.1f} ms"
                         for s in services if s in passes[x]["load"])
        out.append(f"- {PASS_TITLES.get(x, x)}: {lags}")
    out.append("")

    out.append("## Errors by kind (per phase, all services)")
    out.append("")
    out.append("| phase | " + " | ".join(PASS_TITLES.get(x, x) for x in modes) + " |")
    out.append("|---|" + "---|" * len(modes))
    for ph in report["phases"]:
        cells = [ph["name"]]
        for x in modes:
            kinds = {}
            for s in services:
                r = rows.get(x, {}).get(ph["name"], {}).get(s)
                for k, v in (r or {}).get("errors", {}).items():
                    kinds[f"{s}:{k}"] = kinds.get(f"{s}:{k}", 0) + v
            cells.append(", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]) if v) or "none")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")

    proxied = [x for x in modes if passes[x].get("proxy_counters")]
    if proxied:
        out.append("## What the proxy did (counter deltas per phase)")
        out.append("")
        for x in proxied:
            counters = passes[x]["proxy_counters"]
            keys = sorted({k for c in counters.values() for k, v in c.items() if v})
            if not keys:
                continue
            out.append(f"{PASS_TITLES.get(x, x)}:")
            out.append("")
            out.append("| phase | " + " | ".join(keys) + " |")
            out.append("|---|" + "---:|" * len(keys))
            for ph in report["phases"]:
                c = counters.get(ph["name"], {})
                out.append("| " + ph["name"] + " | " + " | ".join(f"{c.get(k, 0):g}" for k in keys) + " |")
            out.append("")

    out.append("## Events")
    out.append("")
    for x in modes:
        t0 = passes[x]["t0_unix_ms"]
        out.append(f"{PASS_TITLES.get(x, x)}:")
        out.append("")
        for e in passes[x]["events"]:
            what = e.get("error") and f"FAILED: {e['error']}" or "; ".join(e.get("detail", []))
            out.append(f"- t={(e['t_unix_ms'] - t0) / 1000:6.2f}s ({e['done_unix_ms'] - e['t_unix_ms']} ms) "
                       f"`{e['phase']}` {e['what']}: {what}")
        out.append("")

    out.append("## Phases")
    out.append("")
    for ph in report["phases"]:
        rates = ", ".join(f"{s} {r:g} rps" for s, r in ph["rps"].items())
        out.append(f"- `{ph['name']}` {ph['start_s']:g}-{ph['start_s'] + ph['duration_s']:g} s: {rates}")
    out.append("")
    out.append("Plots: `latency.png` (p50/p99 per second), `throughput.png` (ok and failed answers per second), "
               "`errors.png` (errors by kind per phase); phases shaded, fault events as vertical lines.")
    return "\n".join(out) + "\n"


def _timeline(load_report):
    tl = load_report.get("timeline", [])
    t = [p["t"] for p in tl]
    return t, tl


def _phase_bands(ax, phases, label=True):
    for i, ph in enumerate(phases):
        if i % 2:
            ax.axvspan(ph["start_s"], ph["start_s"] + ph["duration_s"], color="#000000", alpha=0.05, lw=0)
        if label:
            ax.text(ph["start_s"] + ph["duration_s"] / 2, 1.0, ph["name"], transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7, rotation=0)


def _event_lines(ax, run, load_report, color):
    start = load_report.get("start_unix_ms", run["t0_unix_ms"])
    for e in run["events"]:
        if e.get("error") or any("skipped" in d for d in e.get("detail", [])):
            continue
        ax.axvline((e["t_unix_ms"] - start) / 1000, color=color, lw=0.8, ls=":", alpha=0.8)


def make_plots(report, run_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passes = report["passes"]
    services = list(report["scenario_raw"]["load"])
    phases = report["phases"]
    paths = []

    # Latency percentiles over time.
    fig, axes = plt.subplots(len(services), 1, figsize=(13, 3.2 * len(services)), sharex=True)
    for ax, s in zip(axes, services):
        for x, run in passes.items():
            lr = run["load"].get(s)
            if not lr:
                continue
            t, tl = _timeline(lr)
            c = PASS_COLORS.get(x, "gray")
            ax.plot(t, [p.get("p99_ms") for p in tl], color=c, lw=1.4, label=f"{PASS_TITLES.get(x, x)} p99")
            ax.plot(t, [p.get("p50_ms") for p in tl], color=c, lw=1.0, ls="--", label=f"{PASS_TITLES.get(x, x)} p50")
            _event_lines(ax, run, lr, c)
        _phase_bands(ax, phases, label=(ax is axes[0]))
        ax.set_yscale("log")
        ax.set_ylabel(f"{s}\nlatency (ms)")
        ax.grid(True, which="both", alpha=0.2)
    axes[0].legend(loc="upper left", fontsize=7, ncol=len(passes) * 2)
    axes[-1].set_xlabel("seconds since the pass started (dotted lines: fault events)")
    fig.suptitle(f"{report['scenario']}: latency per second (p50 dashed, p99 solid)", y=0.995)
    fig.tight_layout()
    p = os.path.join(run_dir, "latency.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    # Throughput: ok and failed answers per second.
    fig, axes = plt.subplots(len(services), 1, figsize=(13, 3.2 * len(services)), sharex=True)
    for ax, s in zip(axes, services):
        for x, run in passes.items():
            lr = run["load"].get(s)
            if not lr:
                continue
            t, tl = _timeline(lr)
            c = PASS_COLORS.get(x, "gray")
            ax.plot(t, [p.get("ok", 0) for p in tl], color=c, lw=1.4, label=f"{PASS_TITLES.get(x, x)} ok/s")
            ax.plot(t, [sum(p.get("errors", {}).values()) for p in tl], color=c, lw=1.0, ls=":",
                    label=f"{PASS_TITLES.get(x, x)} failed/s")
            if any(p.get("degraded") for p in tl):
                ax.plot(t, [p.get("degraded", 0) for p in tl], color=c, lw=0.8, ls="-.",
                        label=f"{PASS_TITLES.get(x, x)} fallback/s")
            _event_lines(ax, run, lr, c)
        _phase_bands(ax, phases, label=(ax is axes[0]))
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylabel(f"{s}\nanswers per second")
        ax.grid(True, which="both", alpha=0.2)
        ax.legend(loc="upper left", fontsize=7, ncol=3)
    axes[-1].set_xlabel("seconds since the pass started (dotted lines: fault events)")
    fig.suptitle(f"{report['scenario']}: throughput per second", y=0.995)
    fig.tight_layout()
    p = os.path.join(run_dir, "throughput.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    # Errors by kind per phase: one bar per pass, stacked by kind.
    rows = report["rows"]
    kinds = sorted({k for x in rows for ph in rows[x].values() for r in ph.values() for k in r.get("errors", {})})
    fig, axes = plt.subplots(len(services), 1, figsize=(13, 3.0 * len(services)), sharex=True)
    n = len(passes)
    width = 0.8 / max(1, n)
    cmap = plt.get_cmap("tab20")
    for ax, s in zip(axes, services):
        for j, x in enumerate(passes):
            bottoms = [0.0] * len(phases)
            xs = [i + (j - (n - 1) / 2) * width for i in range(len(phases))]
            for k_i, k in enumerate(kinds):
                vals = []
                for ph in phases:
                    r = rows.get(x, {}).get(ph["name"], {}).get(s)
                    sent = (r or {}).get("sent", 0)
                    vals.append(100.0 * (r or {}).get("errors", {}).get(k, 0) / sent if sent else 0.0)
                ax.bar(xs, vals, width * 0.95, bottom=bottoms, color=cmap(k_i % 20),
                       label=k if (j == 0 and ax is axes[0]) else None, edgecolor=PASS_COLORS.get(x, "gray"), lw=0.6)
                bottoms = [b + v for b, v in zip(bottoms, vals)]
            for xi, b in zip(xs, bottoms):
                ax.text(xi, b, {"bulwark": "B", "haproxy": "H", "direct": "U"}.get(x, x[0]), ha="center",
                        va="bottom", fontsize=6, color=PASS_COLORS.get(x, "gray"))
        ax.set_ylabel(f"{s}\n% of requests failed")
        ax.grid(True, axis="y", alpha=0.2)
    axes[-1].set_xticks(range(len(phases)))
    axes[-1].set_xticklabels([ph["name"] for ph in phases], fontsize=8)
    if kinds:
        axes[0].legend(loc="upper left", fontsize=7, ncol=min(6, len(kinds)))
    fig.suptitle(f"{report['scenario']}: errors by kind per phase (B = bulwark, H = HAProxy, U = unprotected)",
                 y=0.995)
    fig.tight_layout()
    p = os.path.join(run_dir, "errors.png")
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def write_report(report, run_dir, plots=True):
    report.setdefault("machine", machine())
    md = os.path.join(run_dir, "summary.md")
    with open(md, "w") as f:
        f.write(markdown(report))
    paths = [md]
    if plots:
        paths += make_plots(report, run_dir)
    return paths


def load(run_dir):
    with open(os.path.join(run_dir, "report.json")) as f:
        return json.load(f)
