"""A deploy of the example service on the local cloud, measured: the state transitions of its
execution and the AWS requests the platform made for it (both counted, so they do not vary between
runs), and the time from the API call to a healthy process answering, next to the baseline of
starting the same service by hand in the same run (``ratio=``).

    .venv/bin/python bench/deploy.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def baseline(repo: Path) -> float:
    """Start the example by hand and wait for its health check: the floor of any deploy."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=repo,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except requests.ConnectionError:
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-seconds", type=int, default=1)
    args = parser.parse_args()
    os.environ["PLATFORM_DEPLOY_POLL_SECONDS"] = str(args.poll_seconds)
    import logging

    logging.disable(logging.INFO)
    from chalicelib.composition import set_container
    from chalicelib.domain.clock import SystemClock
    from tests.fixtures import start_platform

    tmp = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    cloud = start_platform(tmp / "data", SystemClock())
    try:
        api = cloud.api_url
        token = requests.post(f"{api}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        requests.post(
            f"{api}/v1/namespaces",
            json={"github_org": "acme", "github_team": "backend", "region": "local"},
            headers=h,
            timeout=10,
        )
        arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
        cloud.wait_execution(f"{arn}:acme-backend", timeout=60)
        repo = tmp / "hello"
        subprocess.run(
            ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
        )
        sfn = cloud.client("stepfunctions")
        times, transitions, aws, journalled = [], [], [], []
        states_time: dict[str, list[float]] = {}
        journal = cloud.journal
        assert journal is not None
        for _ in range(args.runs):
            before = dict(cloud.moto.app.requests_by_service)
            journal_before = journal.appended
            started = time.monotonic()
            dep = requests.post(
                f"{api}/v1/namespaces/acme-backend/services/hello/deployments",
                json={"source": str(repo), "ref": "HEAD"},
                headers=h,
                timeout=10,
            ).json()
            exec_arn = cloud.resources["state_machines"]["deploy"].replace(":stateMachine:", ":execution:")
            polls = 0  # our own DescribeExecution calls, counted out below
            while True:
                polls += 1
                status = sfn.describe_execution(executionArn=f"{exec_arn}:{dep['id']}")["status"]
                if status != "RUNNING":
                    break
                time.sleep(0.05)
            after = dict(cloud.moto.app.requests_by_service)
            journalled.append(journal.appended - journal_before)
            assert status == "SUCCEEDED", status
            service = requests.get(f"{api}/v1/namespaces/acme-backend/services/hello", headers=h, timeout=10).json()
            assert requests.get(service["address"], timeout=5).status_code == 200
            times.append(time.monotonic() - started)
            history = sfn.get_execution_history(executionArn=f"{exec_arn}:{dep['id']}", maxResults=1000)["events"]
            transitions.append(sum(1 for e in history if e["type"].endswith("StateEntered")))
            entered = {}
            for e in history:
                if e["type"].endswith("StateEntered"):
                    entered[e["stateEnteredEventDetails"]["name"]] = e["timestamp"]
                elif e["type"].endswith("StateExited"):
                    name = e["stateExitedEventDetails"]["name"]
                    spent = (e["timestamp"] - entered.pop(name, e["timestamp"])).total_seconds()
                    states_time.setdefault(name, []).append(spent)
            counted = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
            counted["states"] = counted.get("states", 0) - polls
            aws.append(counted)
        floor = statistics.median(baseline(repo) for _ in range(args.runs))
        median = statistics.median(times)
        print(f"deploy of examples/hello, {args.runs} runs, poll {args.poll_seconds}s")
        print(f"state transitions per deploy: {transitions}")
        print(
            f"AWS requests per deploy, by service: {json.dumps(aws[-1], sort_keys=True)} "
            f"(total {sum(aws[-1].values())}; runs: {[sum(a.values()) for a in aws]})"
        )
        print(
            "time in each state, median s: "
            + ", ".join(f"{name} {statistics.median(spent):.2f}" for name, spent in states_time.items())
        )
        print(f"table writes journalled (one fsync each) per deploy: {journalled}")
        print(f"API call -> healthy and answering: median {median:.2f} s")
        print(f"baseline (start the process by hand until healthy): median {floor:.3f} s")
        print(f"ddb_requests={max(a.get('dynamodb', 0) for a in aws)}")
        print(f"ratio={median / floor:.1f}")
    finally:
        cloud.stop()
        set_container(None)


if __name__ == "__main__":
    main()
