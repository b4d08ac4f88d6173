"""The hourly metering run on the local cloud, counted: the state transitions of one execution and the
DynamoDB requests of each namespace's close (by operation), for a first run, a steady hourly run, a
catch-up after the clock jumped 5 hours, and a re-run of an hour already closed. Counts, not timings:
they do not vary between runs.

    .venv/bin/python bench/metering.py

Two namespaces are onboarded (``acme/backend`` with the example service deployed and a burst of requests
through its proxy, ``acme/frontend`` with no service). The schedules are left out of the declaration
and the metering queue has no consumer here, so that each piece is counted alone: the execution is
started by hand (as the schedule would), and each message it sent is handed to the consumer function,
one namespace at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    from chalicelib.adapters.local_clock import FileOffsetClock, read_offset, write_offset
    from chalicelib.composition import get_container, set_container
    from chalicelib.domain.metering import hour_key, hour_of
    from localcloud.cloud import LocalCloud, Ports
    from localcloud.declaration import Declaration
    from localcloud.queues import sqs_event

    decl = Declaration.load(stage="local")
    data = json.loads(json.dumps(decl.data))
    data["schedules"] = []
    for queue in data["queues"]:
        if queue["name"] == "metering":
            queue.pop("consumer")
    tmp = Path(tempfile.mkdtemp(prefix="bench-metering-")) / "data"
    clock_file = tmp / "clock.json"
    set_container(None)
    cloud = LocalCloud(
        Declaration(data, "local", decl.region, decl.base_dir),
        FileOffsetClock(clock_file),
        Ports.any_free(),
        data_dir=tmp,
        standins=True,
        snapshot_every=3600,
        stage="local",
    ).start()
    try:
        api = cloud.api_url
        token = requests.post(f"{api}/v1/auth/local-login", json={"login": "ada"}, timeout=10).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        onboarding = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:")
        for team in ("backend", "frontend"):
            body = {"github_org": "acme", "github_team": team, "region": "local"}
            assert requests.post(f"{api}/v1/namespaces", json=body, headers=h, timeout=10).status_code == 202
            assert cloud.wait_execution(f"{onboarding}:acme-{team}", timeout=60)["status"] == "SUCCEEDED"
        repo = tmp.parent / "hello"
        make_repo = ["bash", str(ROOT / "examples/make-example-repo.sh"), str(repo)]
        subprocess.run(make_repo, check=True, capture_output=True)
        url = f"{api}/v1/namespaces/acme-backend/services/hello"
        dep = requests.post(f"{url}/deployments", json={"source": str(repo), "ref": "HEAD"}, headers=h, timeout=10)
        while requests.get(f"{url}/deployments/{dep.json()['id']}", headers=h, timeout=10).json()["status"] not in (
            "succeeded",
            "failed",
            "rolled_back",
        ):
            time.sleep(0.3)
        address = requests.get(url, headers=h, timeout=10).json()["address"]
        for _ in range(25):
            requests.get(address, timeout=5)

        sfn, sqs = cloud.client("stepfunctions"), cloud.client("sqs")
        queue_url = cloud.resources["queues"]["metering"]["url"]
        queue_arn = cloud.resources["queues"]["metering"]["arn"]
        ops = cloud.moto.app.requests_by_operation
        cloud.moto.app.count_write_units = True  # write units counted as DynamoDB would bill them
        wru = cloud.moto.app.write_units

        def units() -> tuple[int, int]:
            return wru.units, sum(wru.index_units.values())

        def dynamodb() -> Counter[str]:
            return Counter({k.split(".")[-1]: v for k, v in ops.items() if k.startswith("DynamoDB_")})

        def hourly(label: str, advance: timedelta) -> None:
            write_offset(clock_file, read_offset(clock_file) + advance)
            now = get_container().clock.now()
            scheduled = hour_of(now).replace(minute=5)
            name = f"bench-{label}-{int(time.time() * 1000)}"
            before = dynamodb()
            arn = cloud.start_execution("metering", {"scheduled_time": scheduled.isoformat()}, name)
            assert cloud.wait_execution(arn)["status"] == "SUCCEEDED"
            fan_out = dynamodb() - before
            history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            transitions = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            until = hour_key(hour_of(scheduled) - timedelta(hours=1))
            print(f"\n{label}: {now.isoformat(timespec='minutes')}, closing up to {until}")
            print(f"  state transitions: {len(transitions)} ({', '.join(transitions)})")
            print(f"  fan-out DynamoDB requests: {sum(fan_out.values())} {dict(fan_out)}; messages: {len(messages)}")
            for m in sorted(messages, key=lambda m: m["Body"]):
                before, units_before = dynamodb(), units()
                result, error = cloud.router.invoke("metering-namespace", sqs_event([m], queue_arn, cloud.decl.region))
                assert error is None and not result["batchItemFailures"], result
                counted = dynamodb() - before
                table_units, index_units = (a - b for a, b in zip(units(), units_before, strict=True))
                ns = json.loads(m["Body"])["namespace"]
                print(f"  {ns}: dynamodb_requests={sum(counted.values())} {dict(sorted(counted.items()))}")
                print(f"    write units: {table_units} (+{index_units} in indexes)")
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

        hourly("first run", timedelta(hours=1))
        hourly("steady hourly run", timedelta(hours=1))
        hourly("catch-up after a 5-hour jump", timedelta(hours=5))
        hourly("re-run of the same hour", timedelta(0))
    finally:
        cloud.stop()
        set_container(None)
        os.environ.pop("PLATFORM_CLOCK_FILE", None)


if __name__ == "__main__":
    main()
