"""Run every benchmark module and write their figures to one JSON file (and a table on stdout)."""

from __future__ import annotations

import argparse
import importlib
import platform
import time
from pathlib import Path

import newtonbench
from newtonbench.atomic import write_json

AREAS = ("generate", "score", "posttrain")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--only", choices=AREAS, action="append", help="run only these areas")
    args = ap.parse_args()
    results = {
        "newtonbench_version": newtonbench.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()},
    }
    for area in args.only or AREAS:
        module = importlib.import_module(f"benchmarks.bench_{area}")
        print(f"== {area}", flush=True)
        results[area] = module.run()
        for k, v in results[area].items():
            print(f"  {k}: {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
