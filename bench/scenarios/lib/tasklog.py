"""Reads the task replicas' shared log (examples/task: the append-only JSON lines every replica of
a pass writes under flock, see examples/task/task_store.h) and checks that each Idempotency-Key
created at most one task.

Records: {"op":"claim","key":K,...} (a keyed create started on some replica), {"op":"release",
"key":K} (it ended without a task), {"op":"task","task":{"id":..,"idempotency_key":K,..}} (a task
was created). A key with two task records is a create that was executed twice: a duplicate.
"""

import json
import os
from collections import Counter


def audit(path):
    """Returns a JSON-ready summary of the log at `path` (None when there is no log)."""
    if not os.path.exists(path):
        return None
    tasks_per_key = Counter()
    claims_per_key = Counter()
    tasks = unkeyed = releases = unreadable = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                unreadable += 1  # a torn last line of a replica killed mid-write
                continue
            op = record.get("op")
            if op == "task":
                tasks += 1
                key = (record.get("task") or {}).get("idempotency_key", "")
                if key:
                    tasks_per_key[key] += 1
                else:
                    unkeyed += 1
            elif op == "claim":
                claims_per_key[record.get("key", "")] += 1
            elif op == "release":
                releases += 1
    duplicates = {k: n for k, n in tasks_per_key.items() if n > 1}
    return {
        "log": path,
        "tasks": tasks,
        "keyed_tasks": tasks - unkeyed,
        "unkeyed_tasks": unkeyed,
        "keys_with_a_task": len(tasks_per_key),
        "duplicate_keys": len(duplicates),
        "duplicate_examples": dict(sorted(duplicates.items())[:5]),
        # A repeat that finds its key claimed or done writes nothing (it is answered 409 or
        # replayed); a second claim means the first ended without a task and the key was free.
        "keys_claimed_more_than_once": sum(1 for n in claims_per_key.values() if n > 1),
        "releases": releases,
        "unreadable_lines": unreadable,
    }


def describe(summary):
    if summary is None:
        return "no task log"
    text = (f"{summary['keys_with_a_task']} keys created {summary['keyed_tasks']} tasks "
            f"({summary['duplicate_keys']} keys with more than one), "
            f"{summary['unkeyed_tasks']} tasks without a key")
    if summary["duplicate_examples"]:
        text += "; e.g. " + ", ".join(f"{k} x{n}" for k, n in summary["duplicate_examples"].items())
    return text
