"""One pass of a scenario: fresh backends, an optional proxy, one load generator per service running
every phase back to back, and the phase events fired on schedule.

A pass returns a plain dict (JSON-ready): per service the load generator's report, the events with
their wall-clock times, and the proxy's counters per phase.

An observer (optional) watches the pass from inside: started(backends, proxy) once everything is
up and before the load starts, tick() every 50 ms while the load runs, and load_done(backends,
proxy) once every generator has ended, before anything is stopped (the soak's checks).
"""

import json
import os
import time

from . import tasklog
from .backends import Backends
from .loadgen import LoadSpec, find_loadgen, read_report
from .procs import Supervisor

EXAMPLES_PROTO_DIR = os.path.join("examples", "ranking")


def make_proxy(mode, sup, scenario, root, build_dir, work_dir):
    if mode == "direct":
        return None
    if mode == "bulwark":
        from .bulwark import BulwarkProxy
        return BulwarkProxy(sup, build_dir, os.path.join(root, scenario.proxy.get("bulwark", "examples/edge.yaml")),
                            work_dir)
    if mode == "haproxy":
        from bench.compare.haproxy import HaproxyProxy
        return HaproxyProxy(sup, scenario, work_dir)
    raise ValueError(f"unknown pass {mode!r} (bulwark, haproxy, direct)")


def _log(msg):
    print(msg, flush=True)


def run_pass(scenario, mode, root, build_dir, pass_dir, log=_log, observer=None):
    os.makedirs(pass_dir, exist_ok=True)
    loadgen = find_loadgen(build_dir)
    with Supervisor(os.path.join(pass_dir, "logs")) as sup:
        started = time.monotonic()
        backends = Backends(sup, build_dir, pass_dir, scenario.backends)
        backends.start()
        proxy = make_proxy(mode, sup, scenario, root, build_dir, pass_dir)
        if proxy is not None:
            proxy.start(backends.endpoints())
        log(f"  {len(backends.replicas)} services x {scenario.backends.get('replicas', 3)} replicas"
            + (f", {proxy.label} on {proxy.address}" if proxy else ", no proxy (round-robin to the replicas)")
            + f" ready in {time.monotonic() - started:.1f}s")

        # One generator per service, all phases in one run.
        gens = {}
        for name, svc in scenario.services.items():
            spec = LoadSpec(name, svc.protocol, svc.requests_for_loadgen(pass_dir, os.path.join(root, EXAMPLES_PROTO_DIR)),
                            svc.connections, svc.timeout, svc.max_queue)
            targets = proxy.targets(svc.service) if proxy else backends.addresses(svc.service)
            phases = [(p.name, p.rps[name], p.duration) for p in scenario.phases]
            requests_file = spec.write_requests(os.path.join(pass_dir, f"{name}.requests.json"))
            json_out = os.path.join(pass_dir, f"{name}.loadgen.json")
            argv = spec.argv(loadgen, targets, phases, requests_file, json_out, scenario.seed)
            gens[name] = (argv, json_out)

        if observer is not None:
            observer.started(backends, proxy)
        t0 = time.time()
        procs = {name: sup.start(f"loadgen-{name}", argv) for name, (argv, _) in gens.items()}
        events, counters = _run_schedule(scenario, mode, backends, proxy, t0, procs, log, observer)

        # Every generator ends on its own after the last phase (plus in-flight requests' timeouts).
        slack = max(s.timeout for s in scenario.services.values()) + 15.0
        deadline = time.monotonic() + max(0.0, t0 + scenario.duration - time.time()) + slack
        loads = {}
        for name, proc in procs.items():
            rc = proc.wait(max(0.1, deadline - time.monotonic()))
            if rc is None:
                raise RuntimeError(f"loadgen-{name} still running {slack:.0f}s after the last phase\n{proc.output()}")
            if rc != 0:
                raise RuntimeError(f"loadgen-{name} exited with {rc}\n{proc.output()}")
            loads[name] = read_report(gens[name][1])
        if observer is not None:
            observer.load_done(backends, proxy)
        stop_started = time.monotonic()
        sup.stop_all()
        log(f"  stopped everything in {time.monotonic() - stop_started:.1f}s")
    # After the stop: every replica has appended its last record.
    task_keys = tasklog.audit(os.path.join(pass_dir, "tasks.log")) if "task" in scenario.services else None
    if task_keys is not None:
        log(f"  task log: {tasklog.describe(task_keys)}")

    return {
        "mode": mode,
        "label": proxy.label if proxy else "unprotected",
        "t0_unix_ms": int(t0 * 1000),
        "load": loads,
        "events": events,
        "proxy_counters": counters,
        "task_keys": task_keys,
        "argv": {name: argv for name, (argv, _) in gens.items()},
    }


def _run_schedule(scenario, mode, backends, proxy, t0, procs, log, observer=None):
    """Fires every event at its time; scrapes the proxy's counters at each phase end."""
    schedule = []
    for phase in scenario.phases:
        for ev in phase.events:
            schedule.append((phase.start + ev.at, 0, phase, ev))
        schedule.append((phase.end, 1, phase, None))
    schedule.sort(key=lambda item: (item[0], item[1]))
    events, counters = [], {}
    last_counters = proxy.counters() if proxy else None
    for at, _kind, phase, ev in schedule:
        delay = t0 + at - time.time()
        if delay > 0:
            _sleep_watching(delay, procs, observer)
        if ev is None:
            if proxy is not None:
                now = proxy.counters()
                counters[phase.name] = {k: now.get(k, 0) - last_counters.get(k, 0) for k in now}
                last_counters = now
            continue
        record = {"phase": phase.name, "at_s": round(at, 3), "action": ev.action, "what": ev.describe(),
                  "t_unix_ms": int(time.time() * 1000)}
        try:
            record["detail"] = _fire(ev, backends, proxy)
        except Exception as e:  # an event that fails is reported, the run goes on
            record["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        record["done_unix_ms"] = int(time.time() * 1000)
        events.append(record)
        note = record.get("error") and f"FAILED: {record['error']}" or "; ".join(record["detail"])
        log(f"  t={time.time() - t0:5.1f}s  {phase.name:<20} {ev.describe()}: {note}")
    return events, counters


def _sleep_watching(delay, procs, observer=None):
    end = time.monotonic() + delay
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        for name, p in procs.items():
            if not p.alive() and p.returncode() != 0:
                raise RuntimeError(f"loadgen-{name} exited with {p.returncode()}\n{p.output()}")
        if observer is not None:
            observer.tick()
        time.sleep(min(left, 0.05))


def _fire(ev, backends, proxy):
    if ev.proxy_only:
        if proxy is None:
            return ["skipped: no proxy in this pass"]
        if ev.action == "reload":
            return [proxy.reload(swap=True) if ev.swap else proxy.reload()]
        return [proxy.handover()]
    if ev.action == "store":
        if backends.redis is None:
            return ["skipped: no feature store"]
        backends.redis.pause() if ev.store_action == "pause" else backends.redis.resume()
        return [f"redis {'SIGSTOP' if ev.store_action == 'pause' else 'SIGCONT'}"]
    services = ev.services or backends.services()
    out = []
    for replica in backends.pick(services, ev.replica):
        if ev.action == "kill":
            out.append(backends.kill(replica))
        elif ev.action == "restart":
            out.append(backends.restart(replica))
        elif ev.action == "fault":
            out.append(backends.fault(replica, ev.spec))
        elif ev.action == "health":
            out.append(backends.health(replica, ev.serving))
    return out


def save_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
