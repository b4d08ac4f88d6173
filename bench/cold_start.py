"""Cold start: for app.py and each functions/*/handler.py, the time to import the handler and make its
first AWS client in a fresh process, next to the floor (a fresh process that imports boto3 and creates
one DynamoDB client).

    .venv/bin/python bench/cold_start.py [--runs 15]

The floor and the handler are measured alternately, run by run (floor, handler, floor, handler, ...),
so that the machine's drift during the run lands on both sides of each pair: the figure is the median
of the pairwise ratios (handler run i / floor run i), with their spread (the interquartile range) and
the absolute medians beside it. Prints one line per handler with ``ratio=<median pairwise ratio>``
(goal: <= 1.3)."""

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


def paired(code: str, runs: int) -> tuple[list[float], list[float]]:
    """``runs`` pairs (floor, handler), each pair measured back to back, after one warm-up of each (the
    file cache and .pyc files warm, as a deployed package has them)."""
    run(FLOOR)
    run(code)
    floors, handler = [], []
    for i in range(runs):
        if i % 2:  # alternate which goes first, so neither always runs on the warmer machine
            handler.append(run(code))
            floors.append(run(FLOOR))
        else:
            floors.append(run(FLOOR))
            handler.append(run(code))
    return floors, handler


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    runs = max(10, args.runs)
    print(f"each handler measured in {runs} pairs with the floor (import boto3 + one DynamoDB client)")
    worst = 0.0
    for module in handlers():
        floors, times = paired(HANDLER.format(module=module), runs)
        ratios = [t / f for t, f in zip(times, floors, strict=True)]
        ratio = statistics.median(ratios)
        low, high = quartiles(ratios)
        worst = max(worst, ratio)
        handler_ms, floor_ms = statistics.median(times) * 1000, statistics.median(floors) * 1000
        spread = f"(IQR {low:.2f}-{high:.2f})"
        print(f"{module}: median {handler_ms:.1f} ms, floor {floor_ms:.1f} ms ratio={ratio:.2f} {spread}")
    print(f"worst ratio={worst:.2f} (goal <= 1.30)")


if __name__ == "__main__":
    main()
