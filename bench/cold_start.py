"""Cold start: for app.py and each functions/*/handler.py, the median over fresh processes of the
time to import the handler and make its first AWS client, next to the floor measured in the same
run (a fresh process that imports boto3 and creates one DynamoDB client).

    .venv/bin/python bench/cold_start.py [--runs 15]

Prints one line per handler with ``ratio=<handler median / floor median>`` (goal: <= 1.3)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOOR = """
import time; t0 = time.perf_counter()
import boto3
boto3.client("dynamodb", region_name="us-east-1")
print(time.perf_counter() - t0)
"""

# Import the handler, then make its first client the way a first request does.
HANDLER = """
import time; t0 = time.perf_counter()
import importlib
module = importlib.import_module({module!r})
from chalicelib.composition import get_container
get_container().bind()
from chalicelib.adapters.dynamodb.base import BaseItem
BaseItem._get_connection().connection.client
print(time.perf_counter() - t0)
"""


def handlers() -> list[str]:
    found = ["app"]
    for path in sorted((ROOT / "functions").glob("*/handler.py")):
        found.append(f"functions.{path.parent.name}.handler")
    return found


def lambda_environment() -> dict[str, str]:
    """The environment the functions run with on AWS (.chalice/config.json, stage prod)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {**config["environment_variables"], **config["stages"]["prod"]["environment_variables"]}


def run(code: str) -> float:
    env = {
        **os.environ,
        **lambda_environment(),
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def median_of(code: str, runs: int) -> float:
    run(code)  # warm the file cache and write .pyc files, as a deployed package has them
    return statistics.median(run(code) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    runs = max(10, args.runs)
    floor = median_of(FLOOR, runs)
    print(f"floor (import boto3 + one DynamoDB client): median {floor * 1000:.1f} ms over {runs} processes")
    worst = 0.0
    for module in handlers():
        median = median_of(HANDLER.format(module=module), runs)
        ratio = median / floor
        worst = max(worst, ratio)
        print(f"{module}: median {median * 1000:.1f} ms ratio={ratio:.2f}")
    print(f"worst ratio={worst:.2f} (goal <= 1.30)")


if __name__ == "__main__":
    main()
