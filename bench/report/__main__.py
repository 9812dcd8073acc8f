"""python3 -m bench.report RUN_DIR: rewrites summary.md and the plots of a saved run (report.json)."""

import sys

from bench.report import load, write_report


def main():
    if len(sys.argv) != 2:
        print("usage: python3 -m bench.report bench/results/<run>/", file=sys.stderr)
        return 2
    for path in write_report(load(sys.argv[1]), sys.argv[1]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
