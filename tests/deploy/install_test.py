#!/usr/bin/python3
"""`cmake --install` into a scratch prefix: the layout the package and the image rely on, the
installed binary's `version --json` naming the git revision it was built from, and the installed
systemd unit passing `systemd-analyze verify` with an exposure score of at most 2.0.

Usage: install_test.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile

MAX_EXPOSURE = 2.0


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def main():
    build_dir, source_dir = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory(prefix="bulwark-install-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        r = run(["cmake", "--install", build_dir, "--prefix", prefix])
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            return 1

        expected = [
            "bin/bulwark",
            "libexec/bulwark/ranking-server",
            "libexec/bulwark/ranking-client",
            "libexec/bulwark/task-server",
            "libexec/bulwark/recommendation-server",
            "lib/systemd/system/bulwark.service",
            "etc/bulwark/bulwark.yaml",
            "etc/logrotate.d/bulwark",
            "share/doc/bulwark/README.md",
            "share/doc/bulwark/docs/configuration.md",
            "share/doc/bulwark/docs/metrics.md",
            "share/doc/bulwark/docs/install.md",
            "share/doc/bulwark/examples/edge.yaml",
            "share/doc/bulwark/examples/ranking.yaml",
            "share/doc/bulwark/deploy/monitoring/grafana-dashboard.json",
        ]
        for rel in expected:
            if not os.path.isfile(os.path.join(prefix, rel)):
                failures.append(f"missing after install: {rel}")
        for rel in ["bin/bulwark", "libexec/bulwark/ranking-server"]:
            path = os.path.join(prefix, rel)
            if os.path.isfile(path) and not os.access(path, os.X_OK):
                failures.append(f"not executable: {rel}")

        binary = os.path.join(prefix, "bin/bulwark")
        r = run([binary, "version", "--json"])
        try:
            version = json.loads(r.stdout)
        except json.JSONDecodeError:
            version = {}
            failures.append(f"version --json is not JSON: {r.stdout!r} {r.stderr!r}")
        head = run(["git", "-C", source_dir, "rev-parse", "HEAD"])
        if head.returncode == 0:
            if version.get("revision") != head.stdout.strip():
                failures.append(
                    f"version --json revision {version.get('revision')!r} != HEAD {head.stdout.strip()}")
            if not isinstance(version.get("revisionDirty"), bool):
                failures.append(f"revisionDirty missing: {version}")
        elif not re.fullmatch(r"[0-9a-f]{40}|unknown", str(version.get("revision"))):
            failures.append(f"revision is neither a commit nor 'unknown': {version}")

        r = run([binary, "check", "-c", os.path.join(prefix, "etc/bulwark/bulwark.yaml")])
        if r.returncode != 0:
            failures.append(f"bulwark check of the installed default config: {r.stdout}{r.stderr}")

        unit = os.path.join(prefix, "lib/systemd/system/bulwark.service")
        text = open(unit).read()
        if f"ExecStart={binary} run" not in text:
            failures.append("installed unit does not run the installed binary")
        if not re.search(r"^Type=notify$", text, re.M):
            failures.append("unit is not Type=notify")
        r = run(["systemd-analyze", "verify", unit], cwd=tmp)
        if r.returncode != 0 or r.stderr.strip():
            failures.append(f"systemd-analyze verify: rc={r.returncode}\n{r.stdout}{r.stderr}")
        r = run(["systemd-analyze", "security", "--offline=true", unit], cwd=tmp)
        m = re.search(r"Overall exposure level for bulwark\.service: ([0-9.]+)", r.stdout)
        if not m:
            failures.append(f"no exposure score from systemd-analyze security:\n{r.stdout}{r.stderr}")
        else:
            score = float(m.group(1))
            print(f"systemd-analyze security: exposure {score} (bound {MAX_EXPOSURE})")
            if score > MAX_EXPOSURE:
                failures.append(f"exposure {score} > {MAX_EXPOSURE}:\n{r.stdout}")

    for f in failures:
        print("FAIL:", f)
    print(f"install_test: {len(expected)} files, version {version}, {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
