"""Container tasks started from a queue: what an EventBridge Pipe from an SQS queue to an ECS RunTask
target does, for each declared queue whose consumer is a ``task`` (``infra/resources.json``: ``tasks``).

For each message: the message is deleted once its task has started (the Pipe deletes a batch when its
target accepted it: a task that dies later is not started again; the state machine that sent it times
out), and the task's ``command`` runs as a process of this machine with the message body in
``PLATFORM_TASK_INPUT`` (the Pipe puts it in the container's environment). ``python`` in a command is
this interpreter. A task's output goes to ``<data dir>/tasks.log``. Tasks still running when the local
cloud stops are stopped with it (SIGTERM, as ECS stops a task)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from localcloud.declaration import ROOT

log = logging.getLogger("localcloud.tasks")


class TaskWorker:
    def __init__(self, sqs: Any, queue: dict[str, Any], url: str, task: dict[str, Any], log_path: Path) -> None:
        self.sqs = sqs
        self.queue = queue
        self.url = url
        self.task = task
        self.log_path = log_path
        self.started = 0
        self.processes: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def command(self) -> list[str]:
        return [sys.executable if part == "python" else part for part in self.task["command"]]

    def poll_once(self, wait_seconds: int = 0) -> int:
        answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds)
        messages = answer.get("Messages", [])
        for m in messages:
            self.start(m["Body"])
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def start(self, body: str) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        env = {**os.environ, "PLATFORM_TASK_INPUT": body}
        process = subprocess.Popen(  # noqa: S603 - the declared command, arguments as a list
            self.command(), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        out.close()
        with self._lock:
            self.processes = [p for p in self.processes if p.poll() is None] + [process]
            self.started += 1
        log.info("task %s started (pid %d)", self.task["name"], process.pid)
        return process

    def run(self, stop: threading.Event, wait_seconds: int = 1) -> None:
        while not stop.is_set():
            try:
                if self.poll_once(wait_seconds) == 0:
                    stop.wait(0.05)
            except Exception:
                if stop.is_set():
                    break
                log.exception("polling %s", self.queue["name"])
                stop.wait(1.0)
        self.stop()

    def stop(self, wait: float = 10.0) -> None:
        with self._lock:
            running = [p for p in self.processes if p.poll() is None]
        for p in running:
            p.terminate()
        for p in running:
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                p.kill()
