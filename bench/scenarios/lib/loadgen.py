"""Runs bulwark-loadgen (bench/loadgen, contract: notes in bench/loadgen/README.md) and reads its JSON.

One LoadSpec describes one service's traffic: protocol, request mix, per-phase rates. The same spec
is sent through a proxy (one target) or straight to the replicas (several targets = plain
round-robin, the "no protection" baseline); the total number of client connections is the same
either way, so both passes offer the same traffic.
"""

import json
import os


def find_loadgen(build_dir):
    path = os.path.join(build_dir, "bench", "loadgen", "bulwark-loadgen")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing: build it with `ninja -C {build_dir} bulwark-loadgen`")
    return path


def fmt_duration(seconds):
    ms = int(round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class LoadSpec:
    """One service's load. `requests` is the contract's --requests list (bodies inline or files)."""

    def __init__(self, name, protocol, requests, connections, timeout_s, max_queue, max_streams=100):
        self.name = name
        self.protocol = protocol
        self.requests = requests
        self.connections = connections  # in total, split over the targets
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self.max_streams = max_streams

    def argv(self, binary, targets, phases, requests_file, json_out, seed):
        """phases: [(name, rps, duration_s)]."""
        per_target = max(1, -(-self.connections // len(targets)))  # ceil: never fewer in total
        argv = [binary, "--protocol", self.protocol, "--connections", per_target,
                "--requests", requests_file, "--timeout", fmt_duration(self.timeout_s),
                "--max-queue", self.max_queue, "--seed", seed, "--json-out", json_out, "--quiet"]
        if self.protocol != "h1":
            argv += ["--max-streams", self.max_streams]
        for t in targets:
            argv += ["--target", t]
        for name, rps, duration in phases:
            argv += ["--phase", f"{name}:{rps:g}:{fmt_duration(duration)}"]
        return [str(a) for a in argv]

    def write_requests(self, path):
        with open(path, "w") as f:
            json.dump(self.requests, f, indent=1)
        return path


def read_report(path):
    with open(path) as f:
        return json.load(f)


def success_rate(stats):
    """ok / sent; what the client saw. Requests never answered (overflow, connect) count as failures."""
    sent = stats.get("sent", 0)
    return stats.get("ok", 0) / sent if sent else float("nan")
