#!/usr/bin/python3
"""deploy/monitoring checked with promtool, plus what promtool cannot see.

  monitoring_test.py rules SOURCE_DIR
      `promtool check rules` and `promtool test rules` on the shipped rules, and the
      error-ratio recording rule equal to the query docs/metrics.md gives readers.
  monitoring_test.py dashboard SOURCE_DIR
      every query of the Grafana dashboard parses as PromQL (through `promtool check rules`)
      and names only metrics documented in docs/metrics.md or recorded by the rules.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml


def promtool(*args, cwd=None):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    return r.returncode, r.stdout + r.stderr


def normalize(expr):
    return " ".join(expr.split())


def docs_error_ratio_query(source_dir):
    """The query under the '# error ratio per route' comment in docs/metrics.md."""
    text = open(os.path.join(source_dir, "docs/metrics.md")).read()
    block = text.split("# error ratio per route", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.startswith("#") and lines:
            break
        if line.startswith("#"):
            continue  # the comment's continuation lines
        lines.append(line)
    return normalize("\n".join(lines))


def check_rules(source_dir):
    mon = os.path.join(source_dir, "deploy/monitoring")
    failures = []
    rc, out = promtool("check", "rules", "bulwark-rules.yaml", cwd=mon)
    print(out)
    if rc != 0:
        failures.append("promtool check rules failed")
    rc, out = promtool("test", "rules", "tests/bulwark-rules.test.yaml", cwd=mon)
    print(out)
    if rc != 0:
        failures.append("promtool test rules failed")
    rules = yaml.safe_load(open(os.path.join(mon, "bulwark-rules.yaml")))
    recorded = {r["record"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    rule_query = normalize(recorded["bulwark:route_error_ratio:rate5m"])
    docs_query = docs_error_ratio_query(source_dir)
    if rule_query != docs_query:
        failures.append(f"docs/metrics.md error ratio query differs from the recording rule:\n"
                        f"  docs: {docs_query}\n  rule: {rule_query}")
    if "UNAVAILABLE" not in docs_query:
        failures.append("docs/metrics.md error ratio query does not count gRPC UNAVAILABLE")
    return failures


def documented_metrics(source_dir):
    text = open(os.path.join(source_dir, "docs/metrics.md")).read()
    names = set()
    for m in re.finditer(r"^\| `([a-z_:]+)` \| (counter|gauge|histogram)", text, re.M):
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def dashboard_queries(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for var in dashboard["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            m = re.fullmatch(r"label_values\((.*), *\w+\)", q["query"])
            if m:
                yield "variable " + var["name"], m.group(1)
    for ann in dashboard["annotations"]["list"]:
        yield "annotation " + ann["name"], ann["expr"]


def check_dashboard(source_dir):
    mon = os.path.join(source_dir, "deploy/monitoring")
    dashboard = json.load(open(os.path.join(mon, "grafana-dashboard.json")))
    rules = yaml.safe_load(open(os.path.join(mon, "bulwark-rules.yaml")))
    known = documented_metrics(source_dir)
    known.update(r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r)
    known.add("up")
    failures = []
    queries = list(dashboard_queries(dashboard))
    recording = []
    for i, (where, expr) in enumerate(queries):
        # Grafana's variables, replaced by what Grafana would send.
        concrete = (expr.replace("$__rate_interval", "1m").replace("$job", ".*")
                    .replace("$instance", ".*").replace("$route", ".*").replace("$upstream", ".*"))
        recording.append({"record": f"dashboard:query_{i}", "expr": concrete})
        for name in re.findall(r"\b(bulwark_[a-z_]+|process_[a-z_]+)\b", concrete):
            if name not in known:
                failures.append(f"{where}: {name} is not in docs/metrics.md")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}, f)
        f.flush()
        rc, out = promtool("check", "rules", f.name)
        if rc != 0:
            failures.append("dashboard queries do not parse:\n" + out)
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ["requests", "error", "grpc", "p50", "p99", "retr", "budget", "breaker",
                  "outlier", "shed", "rate-limited", "endpoints"]:
        if topic not in titles:
            failures.append(f"no dashboard panel about {topic!r}")
    print(f"{len(queries)} dashboard queries checked")
    return failures


def main():
    mode, source_dir = sys.argv[1], sys.argv[2]
    failures = check_rules(source_dir) if mode == "rules" else check_dashboard(source_dir)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
