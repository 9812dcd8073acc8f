"""bulwark as the proxy of a scenario: examples/edge.yaml rewritten to the run's ports.

Only addresses change (listeners and admin on port 0, each upstream's static endpoints replaced by
the running replicas, the access log moved into the run directory); every policy is the shipped
file's (a reload with swap alternates it with a variant whose connect timeouts are 10 ms longer).
A handover starts a second bulwark on the SAME listener port (bulwark binds with
SO_REUSEPORT), waits until it is ready, then SIGTERMs the old one, which drains: zero-downtime.
"""

import os
import signal
import subprocess

from . import yamlio

from .admin import BulwarkAdmin, counter_totals
from .scenario import parse_duration

# The swapped variant of a config (reload with swap): every upstream's connect timeout this much
# longer. Any change to an upstream replaces it on reload (bulwark keeps unchanged upstreams with
# their pools, health and counters), so alternating the two variants retires and rebuilds every
# upstream, its pools and health checkers each time; the routes are recompiled on every reload.
SWAP_CONNECT_TIMEOUT_DELTA_MS = 10


def connect_timeouts_ms(root):
    """{upstream: connectTimeout in ms} of a config (bulwark's default 1s where it is not set)."""
    out = {}
    for upstream in root["upstreams"]:
        tcp = upstream.get("connectionPool", {}).get("tcp", {})
        out[upstream["name"]] = int(round(parse_duration(tcp.get("connectTimeout", "1s")) * 1000))
    return out


def swap_variant(root):
    """The other variant of `root` (in place): connect timeouts SWAP_CONNECT_TIMEOUT_DELTA_MS longer."""
    for upstream in root["upstreams"]:
        tcp = upstream.setdefault("connectionPool", {}).setdefault("tcp", {})
        ms = int(round(parse_duration(tcp.get("connectTimeout", "1s")) * 1000))
        tcp["connectTimeout"] = f"{ms + SWAP_CONNECT_TIMEOUT_DELTA_MS}ms"
    return root


def edge_config(source_path, endpoints, access_log_path, listener_address="127.0.0.1:0", swapped=False):
    """examples/edge.yaml with the run's addresses; `endpoints` = {upstream: ["127.0.0.1:P", ...]}.
    swapped: the other variant (swap_variant) that reloads with swap alternate with."""
    with open(source_path) as f:
        root = yamlio.load(f)
    root["admin"]["address"] = "127.0.0.1:0"
    for listener in root["listeners"]:
        listener["address"] = listener_address
    for upstream in root["upstreams"]:
        name = upstream["name"]
        if name not in endpoints:
            raise ValueError(f"{source_path} has an upstream the scenario does not run: {name}")
        upstream["endpoints"] = {"static": [{"address": a} for a in endpoints[name]]}
    obs = root.setdefault("observability", {})
    if obs.get("accessLog"):
        obs["accessLog"]["path"] = access_log_path
    return swap_variant(root) if swapped else root


class BulwarkProxy:
    """One logical proxy (one listener address) made of one bulwark process, two during a handover."""

    kind = "bulwark"
    label = "bulwark"

    def __init__(self, sup, build_dir, source_config, work_dir):
        self.sup = sup
        self.binary = os.path.join(build_dir, "proxy", "bulwark")
        self.source_config = source_config
        self.work_dir = work_dir
        self.proc = None
        self.admin = None
        self.address = None
        self.generation = 0
        self._counters_base = {}
        self._counters_done = {}
        self.swapped = False  # which variant the running config file holds (reload with swap)

    def check(self, path):
        out = subprocess.run([self.binary, "check", "-c", path], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"bulwark check {path} failed:\n{out.stdout}{out.stderr}")

    def _write(self, endpoints, listener_address):
        self.generation += 1
        path = os.path.join(self.work_dir, f"bulwark-{self.generation}.yaml")
        self._write_file(path, endpoints, listener_address, self.generation)
        return path

    def _write_file(self, path, endpoints, listener_address, generation):
        cfg = edge_config(self.source_config, endpoints,
                          os.path.join(self.work_dir, f"bulwark-{generation}.access.log"), listener_address,
                          self.swapped)
        # Written aside and renamed: the file is never seen half written.
        with open(path + ".tmp", "w") as f:
            f.write(f"# {self.source_config} with the run's addresses (generated"
                    + (", swapped variant" if self.swapped else "") + ")\n")
            yamlio.dump(cfg, f)
        self.check(path + ".tmp")
        os.replace(path + ".tmp", path)
        return cfg

    def _launch(self, endpoints, listener_address, takeover=False):
        # A reload must keep the listener address as written (a restart-only field).
        self.listener_address = listener_address
        path = self._write(endpoints, listener_address)
        argv = [self.binary, "run", "-c", path] + (["--takeover"] if takeover else [])
        proc = self.sup.start(f"bulwark-{self.generation}", argv)
        port = proc.wait_for_port(r"listener \S+ listening on 127\.0\.0\.1:(\d+)")
        admin_port = proc.wait_for_port(r"admin listening on 127\.0\.0\.1:(\d+)")
        admin = BulwarkAdmin(admin_port)
        if not admin.wait_ready(15.0):
            raise RuntimeError(f"bulwark never became ready:\n{proc.output()}")
        return proc, admin, port, path

    def start(self, endpoints):
        self.endpoints = endpoints
        self.proc, self.admin, port, self.config_path = self._launch(endpoints, "127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self._counters_base = counter_totals(self.admin.metrics())
        return self.address

    def targets(self, _service):
        return [self.address]

    def reloads(self):
        """bulwark_config_reloads_total of the running process: {"success": n, "failure": n}."""
        out = {"success": 0, "failure": 0}
        for (name, labels), value in self.admin.metrics().items():
            if name == "bulwark_config_reloads_total":
                out[dict(labels).get("result", "")] = int(value)
        return out

    def reload(self, swap=False):
        """POST /reload of the running config file (recompiles the routes; changed upstreams are
        replaced). swap: first rewrite the file with the other variant (swap_variant), then check
        that the reload counter moved and /config shows the new connect timeouts."""
        before = self.reloads() if swap else None
        if swap:
            self.swapped = not self.swapped
            cfg = self._write_file(self.config_path, self.endpoints, self.listener_address, self.generation)
        answer = self.admin.reload()
        if not answer.ok:
            raise RuntimeError(f"POST /reload: {answer.status} {' '.join(answer.body.split())}")
        if not swap:
            return f"POST /reload -> {answer.status}"
        after = self.reloads()
        if after["success"] != before["success"] + 1 or after["failure"] != before["failure"]:
            raise RuntimeError(f"POST /reload answered {answer.status} but bulwark_config_reloads_total went "
                               f"from {before} to {after}")
        want = connect_timeouts_ms(cfg)
        shown = self.admin.config()
        got = connect_timeouts_ms(shown) if shown else None
        if got != want:
            raise RuntimeError(f"after the reload /config shows connect timeouts {got}, the file has {want}")
        return (f"POST /reload -> {answer.status}, {'swapped' if self.swapped else 'original'} variant in force, "
                f"reloads {after['success']}")

    def handover(self):
        """New process on the same port, ready, then SIGTERM the old one (it drains)."""
        old_proc, old_admin = self.proc, self.admin
        new_proc, new_admin, port, path = self._launch(self.endpoints, self.address, takeover=True)
        if f"127.0.0.1:{port}" != self.address:
            raise RuntimeError(f"handover bound 127.0.0.1:{port}, not {self.address}")
        # Count what the old process did until now; the new one starts from zero.
        self._fold_counters(old_admin)
        self.proc, self.admin, self.config_path = new_proc, new_admin, path
        self._counters_base = counter_totals(new_admin.metrics())
        old_proc.signal(signal.SIGTERM)
        return f"{new_proc.name} (pid {new_proc.pid}) ready on {self.address}; SIGTERM to {old_proc.name} (pid {old_proc.pid})"

    def _fold_counters(self, admin):
        now = counter_totals(admin.metrics())
        for k, v in now.items():
            self._counters_done[k] = self._counters_done.get(k, 0) + v - self._counters_base.get(k, 0)

    def counters(self):
        """Totals since start() over every process of this proxy."""
        now = counter_totals(self.admin.metrics()) if self.admin else {}
        return {k: self._counters_done.get(k, 0) + now.get(k, 0) - self._counters_base.get(k, 0) for k in now}

    def processes(self):
        return [p for p in self.sup.procs if p.name.startswith("bulwark-")]

    def stop(self):
        self.sup.stop(self.processes(), grace=10.0)
