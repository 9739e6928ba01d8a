"""Times a full `rnnflow run` from an empty output dir and reports per-component seconds.

    python -m benchmarks.pipeline_run --json out.json [--config sentiment] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="where to write the report")
    parser.add_argument("--config", default="sentiment")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as output_dir:
        command = [sys.executable, "-m", "rnnflow.pipeline.cli", "run", "--config", args.config,
                   "--output-dir", output_dir]
        for override in args.overrides:
            command += ["--set", override]
        started = time.time()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.time() - started
        with open(f"{output_dir}/run_summary.json", encoding="utf-8") as f:
            summary = json.load(f)
    report = {
        "config": args.config, "overrides": args.overrides, "exit_code": result.returncode,
        "wall_seconds": round(wall, 1), "status": summary["status"], "metrics": summary["metrics"],
        "components": summary["components"], "epochs_run": (summary.get("training") or {}).get("epochs_run"),
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "cpus": os.cpu_count()},
    }
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: report[k] for k in ("status", "wall_seconds", "metrics")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
