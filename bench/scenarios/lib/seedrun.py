"""Scaffolding shared by the seeds' load tests (bench/scenarios/eaglerank, recsys, fluxor): the
common command line, the run directory, and the report files with the verdict and exit status."""

import argparse
import json
import os
import time

from . import yamlio

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def start(doc, scenario_path, results_prefix, add_options=None):
    """Parses --scenario, --build-dir, --out (+ add_options(parser)); returns (args, cfg, run_dir)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=scenario_path)
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=None, help=f"run directory (default bench/results/{results_prefix}-<time>)")
    if add_options:
        add_options(parser)
    args = parser.parse_args()
    with open(args.scenario) as f:
        cfg = yamlio.load(f)
    run_dir = args.out or os.path.join(ROOT, "bench", "results", time.strftime(f"{results_prefix}-%Y%m%d-%H%M%S"))
    os.makedirs(run_dir, exist_ok=True)
    return args, cfg, run_dir


def finish(run_dir, cfg, markdown, payload, failed, what):
    """Writes report.json (payload + scenario + failed) and summary.md, prints them; exit status."""
    verdict = "PASS" if not failed else "FAIL: " + "; ".join(failed)
    with open(os.path.join(run_dir, "report.json"), "w") as f:
        json.dump(dict(payload, scenario=cfg, failed=failed), f, indent=2)
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(f"# {cfg['name']}\n\n{markdown}\n\nThresholds ({what}): {verdict}\n")
    print(markdown)
    print(f"thresholds ({what}): {verdict}")
    print(f"report: {run_dir}/summary.md, {run_dir}/report.json")
    return 0 if not failed else 1
