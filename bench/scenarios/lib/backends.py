"""The example backends of a scenario: N replicas of ranking (gRPC), task and recommendation
(HTTP/1.1), plus the feature store (Debian's redis-server on a unix socket) ranking reads.

Every replica starts on port 0 and announces `listening on 127.0.0.1:PORT` and `control port: N`;
a killed replica is restarted on the port it had, so the proxies' static endpoints stay valid.
"""

import os
import shutil
import signal
import time

from .admin import set_fault, set_health

BINARIES = {
    "ranking": "examples/ranking/ranking-server",
    "task": "examples/task/task-server",
    "recommendation": "examples/recommendation/recommendation-server",
}


class Replica:
    def __init__(self, service, index, replica_id):
        self.service = service
        self.index = index
        self.id = replica_id
        self.proc = None
        self.port = 0
        self.control_port = 0
        self.generation = 0

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


class Redis:
    """redis-server on a unix socket in the work dir, no persistence: the ranking feature store."""

    def __init__(self, sup, work_dir):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is missing: scripts/install-deps.sh installs it")
        self.socket = os.path.join(work_dir, "redis.sock")
        self.proc = sup.start("redis", [binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                                        "--save", "", "--appendonly", "no", "--daemonize", "no"])
        self.proc.wait_for_line(r"[Rr]eady to accept connections", timeout=10.0)

    @property
    def uri(self):
        return f"unix://{self.socket}"

    def pause(self):
        """SIGSTOP: the store hangs (every read times out), the nastier kind of down."""
        self.proc.signal(signal.SIGSTOP)

    def resume(self):
        self.proc.signal(signal.SIGCONT)


class Backends:
    def __init__(self, sup, build_dir, work_dir, config):
        """config: the phase file's `backends` map (replicas, per-service args, feature_store)."""
        self.sup = sup
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.config = config
        self.replicas = {}
        self.redis = None

    def services(self):
        return list(self.replicas)

    def _argv(self, replica, port):
        svc = self.config["services"][replica.service]
        argv = [os.path.join(self.build_dir, BINARIES[replica.service]), "--port", port,
                "--replica-id", replica.id, "--control-port", "0"]
        if replica.service == "task":
            argv += ["--data-file", os.path.join(self.work_dir, "tasks.log")]
        if replica.service == "ranking" and self.redis is not None:
            argv += ["--feature-store", self.redis.uri]
        argv += [str(a) for a in svc.get("args", [])]
        return argv

    def _spawn(self, replica, port):
        replica.generation += 1
        name = replica.id if replica.generation == 1 else f"{replica.id}.{replica.generation}"
        replica.proc = self.sup.start(name, self._argv(replica, port))

    def _await(self, replica, timeout=20.0):
        replica.port = replica.proc.wait_for_port(timeout=timeout)
        replica.control_port = int(replica.proc.wait_for_line(r"control port: (\d+)", timeout).group(1))

    def start(self):
        count = int(self.config.get("replicas", 3))
        if self.config["services"].get("ranking", {}).get("feature_store") == "redis":
            self.redis = Redis(self.sup, self.work_dir)
        for service in self.config["services"]:
            self.replicas[service] = [Replica(service, i, f"{service}-{i}") for i in range(count)]
        # All first, then their ports: they start in parallel.
        for group in self.replicas.values():
            for r in group:
                self._spawn(r, 0)
        for group in self.replicas.values():
            for r in group:
                self._await(r)

    def addresses(self, service):
        return [r.address for r in self.replicas[service]]

    def endpoints(self):
        return {s: self.addresses(s) for s in self.replicas}

    def pick(self, services, index):
        out = []
        for s in services:
            group = self.replicas.get(s, [])
            if index < len(group):
                out.append(group[index])
        return out

    # Fault actions; each returns a short description for the event log.
    def kill(self, replica):
        replica.proc.signal(signal.SIGKILL)
        replica.proc.wait(5.0)
        return f"kill -9 {replica.id} (pid {replica.proc.pid})"

    def restart(self, replica):
        if replica.proc.alive():
            return f"{replica.id} still running"
        self._spawn(replica, replica.port)
        deadline = time.monotonic() + 20.0
        while True:
            try:
                self._await(replica, timeout=max(1.0, deadline - time.monotonic()))
                break
            except Exception:
                # The port may sit in TIME_WAIT-free limbo for a moment after a kill: retry the bind.
                if time.monotonic() > deadline or replica.proc.alive():
                    raise
                self._spawn(replica, replica.port)
        return f"restart {replica.id} on {replica.address} (pid {replica.proc.pid})"

    def fault(self, replica, spec):
        set_fault(replica.control_port, spec)
        return f"{replica.id} fault {spec or 'off'}"

    def health(self, replica, serving):
        set_health(replica.control_port, serving)
        return f"{replica.id} health serving={serving}"

    def processes(self):
        return [p for p in self.sup.procs if not p.name.startswith(("bulwark", "haproxy", "loadgen"))]
