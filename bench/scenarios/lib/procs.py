"""Child processes of a scenario: start, wait for their announced ports, signal, stop.

Every process is started through one Supervisor, which stops all of them on exit, on Ctrl-C and on
SIGTERM. Children also get PR_SET_PDEATHSIG(SIGKILL), so even a harness killed with -9 leaves no
process (and no port) behind. Children run in their own session: a Ctrl-C in the terminal reaches
only the harness, which then stops them in order (load first, then proxies, then backends).
"""

import ctypes
import os
import re
import signal
import subprocess
import time

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # Runs in the child between fork and exec: die with the harness.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()


def rss_kib(pid):
    """VmRSS of a process in KiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def open_fds(pid):
    """The open file descriptors of a process by kind ({"socket": 12, "anon_inode:[eventpoll]": 3,
    "pipe": 2, "file": 4, ...}); None once it is gone."""
    kinds = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("/"):
            kind = "file"
        elif target.startswith(("socket:", "pipe:")):
            kind = target.split(":", 1)[0]
        else:
            kind = target  # anon_inode:[eventpoll], anon_inode:[eventfd], ...
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


class StartupError(RuntimeError):
    """A process exited or did not announce what it should in time."""


class Proc:
    """One child process; stdout and stderr go to files in the run directory."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.out_path = os.path.join(log_dir, f"{name}.out")
        self.err_path = os.path.join(log_dir, f"{name}.err")
        # Append: a restarted replica keeps one log.
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self._out_offset = out.tell()
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                          env=env, cwd=cwd, preexec_fn=_child_setup, close_fds=True)
        self.pid = self.popen.pid
        self.started_at = time.time()

    def alive(self):
        return self.popen.poll() is None

    def rss_kib(self):
        return rss_kib(self.pid) if self.alive() else None

    def open_fds(self):
        return open_fds(self.pid) if self.alive() else None

    def returncode(self):
        return self.popen.poll()

    def output(self, limit=4000):
        text = ""
        for path in (self.out_path, self.err_path):
            try:
                with open(path, "rb") as f:
                    data = f.read()
                text += f"--- {os.path.basename(path)} ---\n" + data[-limit:].decode(errors="replace") + "\n"
            except OSError:
                pass
        return text

    def wait_for_line(self, pattern, timeout=15.0, stream="out"):
        """Waits for a line matching `pattern` (written after this start); returns the match."""
        regex = re.compile(pattern)
        path = self.out_path if stream == "out" else self.err_path
        offset = self._out_offset if stream == "out" else 0
        deadline = time.monotonic() + timeout
        while True:
            with open(path, "rb") as f:
                f.seek(offset)
                for raw in f.read().decode(errors="replace").splitlines():
                    m = regex.search(raw)
                    if m:
                        return m
            if not self.alive():
                raise StartupError(f"{self.name} exited with {self.returncode()} before printing "
                                   f"/{pattern}/\n{self.output()}")
            if time.monotonic() > deadline:
                raise StartupError(f"{self.name} did not print /{pattern}/ within {timeout:.0f}s\n{self.output()}")
            time.sleep(0.02)

    def wait_for_port(self, pattern=r"listening on 127\.0\.0\.1:(\d+)", timeout=15.0):
        return int(self.wait_for_line(pattern, timeout).group(1))

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class Supervisor:
    """Owns every child of a run. Use as a context manager; stop_all() is idempotent."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.procs = []
        self._old_handlers = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc):
        self.stop_all()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        return False

    @staticmethod
    def _on_signal(signum, _frame):
        # Unwinds the run through the `with` blocks, which stop every child.
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, name, argv, env=None, cwd=None):
        proc = Proc(name, argv, self.log_dir, env=env, cwd=cwd)
        self.procs.append(proc)
        return proc

    def stop(self, procs, sig=signal.SIGTERM, grace=8.0):
        """Signals `procs` together, waits up to `grace` s in all, then SIGKILLs the rest."""
        procs = [p for p in procs if p.alive()]
        for p in procs:
            p.signal(sig)
        deadline = time.monotonic() + grace
        for p in procs:
            if p.wait(max(0.0, deadline - time.monotonic())) is None:
                p.signal(signal.SIGKILL)
                p.wait(5.0)

    def stop_all(self, grace=8.0):
        # Newest first: load generators, then proxies, then backends and stores.
        live = [p for p in reversed(self.procs) if p.alive()]
        if not live:
            return
        # Ignore a second Ctrl-C (or SIGTERM) while cleaning up so the cleanup itself is not interrupted.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stop(live, grace=grace)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
