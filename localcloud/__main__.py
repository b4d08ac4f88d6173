"""``make run``: the whole platform on this machine. Ctrl-C (or ``make stop``) stops everything it
started and saves the table; ``make reset`` wipes the local data."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from localcloud.cloud import LocalCloud, Ports
from localcloud.declaration import ROOT, Declaration

DATA_DIR = Path(os.environ.get("PLATFORM_DATA_DIR", ROOT / ".local"))
PID_FILE = DATA_DIR / "run.pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    os.umask(0o077)  # everything it writes (data, runtime state, artifacts, logs) is for this user only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3", "stripe"):  # stripe logs every request at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from chalicelib.adapters.local_clock import FileOffsetClock
    from chalicelib.domain.clock import Clock, SystemClock

    # The local stage's clock can be moved (python -m localcloud.clock advance 3h); the handlers read
    # the same file through PLATFORM_CLOCK_FILE.
    clock: Clock = FileOffsetClock(DATA_DIR / "data" / "clock.json") if args.stage == "local" else SystemClock()
    started = time.monotonic()
    cloud = LocalCloud(
        Declaration.load(stage=args.stage),
        clock,
        Ports.from_env(),
        host=args.host,
        data_dir=DATA_DIR / "data",
        stage=args.stage,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cloud.start()
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(str(os.getpid()))
    print(
        f"""
Micro as a Service is running on the local cloud (stage {args.stage}), ready in {time.monotonic() - started:.1f}s:

  Dashboard           {cloud.api_url}/            (open it and log in locally, e.g. as ada)
  API                 {cloud.api_url}/v1         (OpenAPI: {cloud.api_url}/openapi.json)
  AWS (moto server)   {cloud.moto.endpoint}     table {cloud.decl.table_name}, bus {cloud.decl.bus_name}
  GitHub stand-in     {cloud.github.api_url}   (requests: {cloud.github.url}/_stand-in/requests)
  Slack stand-in      {cloud.slack.url}         (received: {cloud.slack.url}/_stand-in/received)
  Webhook receiver    {cloud.webhooks.url}         (received: {cloud.webhooks.url}/_stand-in/received)
  Mail (.eml)         {cloud.data_dir / "mail" if cloud.data_dir else "-"}  (everything sent: platform outbox)
  micro stand-in      {cloud.micro.url}         region micro-local (state: {cloud.micro.url}/_stand-in/state)
  Stripe stand-in     {cloud.stripe.url}         (requests: {cloud.stripe.url}/_stand-in/requests)
  Local data          {cloud.snapshot_path}  ({cloud.restored} items restored)
  Clock               {clock.now().isoformat(timespec="seconds")}  (move it: python -m localcloud.clock advance 3h)
  Queues consumed     {", ".join(cloud.consumers) or "none yet"}
  Schedules           {", ".join(s["name"] for s in cloud.decl.list("schedules")) or "none"}

Ctrl-C or `make stop` stops everything; `make reset` wipes the local data.
""",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        cloud.stop()
        PID_FILE.unlink(missing_ok=True)
        print(f"stopped; {cloud.snapshotter.saved if cloud.snapshotter else 0} items saved", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
