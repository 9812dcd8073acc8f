#!/usr/bin/python3
"""Upstream calls per request, per phase and service, from a saved run's bulwark pass.

  bench/scenarios/upstream_calls.py bench/results/<run>/

Reads the run's report.json (phase times, the pass's start) and the bulwark pass's JSON access
log (one line per request, with every attempt in `decisions.attempts`), and prints per phase and
upstream the requests, the calls made to replicas (first tries, retries and hedges) and the extra
calls in percent. Requests bulwark answered without calling a replica (shed, rate limited,
fallbacks) count as requests with no call. This is how the slow-replica phase's "no more than
10 % extra upstream calls" is checked.
"""

import collections
import json
import os
import sys


def calls_of(entry):
    attempts = entry.get("decisions", {}).get("attempts")
    if attempts is not None:
        return len(attempts)
    return int(entry.get("attempts", 0))


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    run = sys.argv[1]
    report = json.load(open(os.path.join(run, "report.json")))
    t0 = report["passes"]["bulwark"]["t0_unix_ms"]
    with open(os.path.join(run, "bulwark", "bulwark-1.access.log")) as fh:
        entries = [json.loads(line) for line in fh if line.strip()]
    print(f"{'phase':20s} {'upstream':15s} {'requests':>9s} {'calls':>7s} {'extra':>8s}")
    for phase in report["phases"]:
        begin = t0 + phase["start_s"] * 1000
        end = begin + phase["duration_s"] * 1000
        requests, calls = collections.Counter(), collections.Counter()
        for entry in entries:
            upstream = entry.get("upstream_cluster")
            if upstream and begin <= entry["start_time"] < end:
                requests[upstream] += 1
                calls[upstream] += calls_of(entry)
        for upstream in sorted(requests):
            extra = 100.0 * (calls[upstream] - requests[upstream]) / requests[upstream]
            print(f"{phase['name']:20s} {upstream:15s} {requests[upstream]:9d} {calls[upstream]:7d} "
                  f"{extra:+7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
