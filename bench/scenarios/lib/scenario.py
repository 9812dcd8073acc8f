"""A phase file (e.g. bench/scenarios/chaos.yaml) read into plain objects, with its errors named."""

import re
import subprocess
import os

from . import yamlio

PROXY_ONLY_ACTIONS = {"reload", "handover"}
ACTIONS = {"kill", "restart", "fault", "health", "store"} | PROXY_ONLY_ACTIONS


class ScenarioError(ValueError):
    pass


def parse_duration(value):
    """'8s', '500ms', '1m', or a number of seconds -> seconds (float)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*", str(value))
    if not m:
        raise ScenarioError(f"bad duration {value!r} (use e.g. 500ms, 8s, 1m)")
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "ms" else n * 60 if unit == "m" else n


class Event:
    def __init__(self, raw, phase, time_scale=1.0):
        self.raw = raw
        self.at = parse_duration(raw.get("at", 0)) * time_scale
        self.action = raw.get("do")
        if self.action not in ACTIONS:
            raise ScenarioError(f"phase {phase.name}: unknown action {self.action!r} (one of {sorted(ACTIONS)})")
        if self.at > phase.duration:
            raise ScenarioError(f"phase {phase.name}: event at {self.at}s is after the phase's end")
        self.replica = int(raw.get("replica", 0))
        self.services = raw.get("services")
        self.spec = raw.get("spec", {})
        self.store_action = raw.get("action")
        self.serving = raw.get("serving", True)
        # reload with swap: true rewrites the config file with the other of two variants first, so
        # every reload replaces the upstreams (bulwark keeps unchanged ones) and recompiles the routes.
        self.swap = bool(raw.get("swap", False))
        if self.swap and self.action != "reload":
            raise ScenarioError(f"phase {phase.name}: swap applies to reload only")
        if self.action == "store" and self.store_action not in ("pause", "resume"):
            raise ScenarioError(f"phase {phase.name}: store needs action: pause|resume")

    @property
    def proxy_only(self):
        return self.action in PROXY_ONLY_ACTIONS

    def describe(self):
        if self.action in ("kill", "restart"):
            return f"{self.action} replica {self.replica}"
        if self.action == "fault":
            return f"replica {self.replica} fault {self.spec or 'off'}"
        if self.action == "health":
            return f"replica {self.replica} health serving={self.serving}"
        if self.action == "store":
            return f"feature store {self.store_action}"
        if self.swap:
            return "reload (swapped config)"
        return self.action


class Phase:
    def __init__(self, raw, start, services, default_expect, time_scale=1.0, cycle=None):
        self.name = raw["name"]
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ScenarioError(f"phase name {self.name!r}: letters, digits, '-', '_' and '.' only")
        # A phase of a repeated cycle (Scenario(cycles=N)) is named c<N>.<name>, counted from 1.
        self.base_name = self.name
        self.cycle = cycle
        if cycle is not None:
            self.name = f"c{cycle + 1}.{self.name}"
        self.duration = parse_duration(raw["duration"]) * time_scale
        self.start = start
        self.events = sorted((Event(e, self, time_scale) for e in raw.get("events", [])), key=lambda e: e.at)
        self.rps = {}
        for name, svc in services.items():
            value = raw.get("rps", {}).get(name, svc.rps)
            self.rps[name] = svc.rate(value)
        self.expect = {}
        raw_expect = dict(default_expect)
        raw_expect.update({k: v for k, v in raw.get("expect", {}).items() if k not in services})
        for name in services:
            e = dict(raw_expect)
            e.update(raw.get("expect", {}).get(name, {}))
            self.expect[name] = {k: float(e[k]) for k in ("success", "p99_ms") if k in e}

    @property
    def end(self):
        return self.start + self.duration


class ServiceLoad:
    def __init__(self, name, raw):
        self.name = name
        # The backend service this traffic goes to: the load's name unless `service:` says
        # otherwise (two loads, e.g. HTTP/1.1 and h2c, may share a service).
        self.service = raw.get("service", name)
        self.protocol = raw.get("protocol", "h1")
        self.rps = float(raw["rps"])
        self.capacity_rps = float(raw.get("capacity_rps", 0))
        self.connections = int(raw.get("connections", 16))
        self.timeout = parse_duration(raw.get("timeout", "2s"))
        self.max_queue = int(raw.get("max_queue", 1000))
        self.requests = raw["requests"]

    def rate(self, value):
        if isinstance(value, (int, float)):
            return float(value)
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*x\s*(capacity|steady)\s*", str(value))
        if not m:
            raise ScenarioError(f"load {self.name}: bad rate {value!r} (a number, '10x capacity' or '2x steady')")
        base = self.capacity_rps if m.group(2) == "capacity" else self.rps
        if base <= 0:
            raise ScenarioError(f"load {self.name}: {value!r} needs capacity_rps")
        return float(m.group(1)) * base

    def requests_for_loadgen(self, work_dir, proto_dir):
        """The contract's --requests list; gRPC bodies are encoded from text format with protoc."""
        out = []
        for i, r in enumerate(self.requests):
            item = {k: v for k, v in r.items() if k != "proto"}
            if "proto" in r:
                path = os.path.join(work_dir, f"{self.name}-{i}.bin")
                with open(path, "wb") as f:
                    f.write(encode_proto(r["proto"], proto_dir))
                item["body_file"] = path
            out.append(item)
        return out


def encode_proto(text, proto_dir, message="ranking.v1.RankRequest", proto="ranking.proto"):
    result = subprocess.run(["protoc", f"--encode={message}", f"-I{proto_dir}", os.path.join(proto_dir, proto)],
                            input=text.encode(), capture_output=True)
    if result.returncode != 0:
        raise ScenarioError(f"protoc --encode={message} failed on {text!r}: {result.stderr.decode()}")
    return result.stdout


class Scenario:
    def __init__(self, path, time_scale=1.0, cycles=None):
        """cycles=N runs the file's phases N times back to back (a soak); phase i of cycle k is then
        named c<k>.<name>."""
        self.path = path
        with open(path) as f:
            raw = yamlio.load(f)
        self.raw = raw
        self.name = raw.get("name", os.path.splitext(os.path.basename(path))[0])
        self.seed = int(raw.get("seed", 1))
        self.backends = raw["backends"]
        self.proxy = raw.get("proxy", {})
        self.services = {name: ServiceLoad(name, svc) for name, svc in raw["load"].items()}
        for name, svc in self.services.items():
            if svc.service not in self.backends["services"]:
                raise ScenarioError(f"load {name}: no such backend service {svc.service!r}")
        default_expect = raw.get("expect", {})
        self.phases = []
        t = 0.0
        for cycle in range(cycles or 1):
            for p in raw["phases"]:
                phase = Phase(p, t, self.services, default_expect, time_scale, cycle if cycles else None)
                self.phases.append(phase)
                t = phase.end
        self.cycles = cycles
        self.cycle_duration = t / (cycles or 1)
        self.duration = t
