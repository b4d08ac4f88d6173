"""The ``TerraformPort`` over python-terraform: the one place that runs the ``terraform`` binary.

python-terraform 0.10.1 (its last release) lags Terraform (its ``python_terraform/__init__.py``: ``apply()``
asks for approval unless ``skip_plan``, ``output("name")`` raises TypeError, ``destroy()`` passes ``-force``,
which Terraform 0.15 removed, unless ``force=IsNotFlagged``, ``plan`` answers 2 on changes with
``-detailed-exitcode``), so every command goes through ``Terraform.cmd`` with its flags
spelled out (``-input=false``, ``-no-color``), output captured, and every return code checked here.

A region's working directory is ``<work root>/<region>/``: a copy of the configuration tree (``infra/``:
the cloud's composition under ``examples/<cloud>`` and the ``modules`` it calls), refreshed before every
run and run in ``examples/<cloud>``, so Terraform's ``.terraform``, lock file and (with the local
backend) state stay there between runs. With ``state_bucket`` set (AWS), the state is in S3 at
``regions/<region>/terraform.tfstate`` (``-backend-config``; the S3 backend's lock file), and the saved
plan of an attempt is kept beside it (a container task's disk does not outlive the task: the plan made
before an approval is applied by another task).

Variables go in ``terraform.tfvars.json`` (auto-loaded; python-terraform's ``-var`` maps become temporary
files). The plan's summary comes from ``terraform show -json`` (resource changes counted by action), the
outputs from ``terraform output -json``. Every command's output is appended to the run's log
(``logs/<attempt>-<action>.log``); a failure's reason is Terraform's first ``Error:`` line and its
excerpt the log's last lines, secrets masked."""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chalicelib.domain.ports import PlanSummary, TerraformResult, TerraformRun
from chalicelib.domain.redaction import redact

log = logging.getLogger("platform.terraform")

EXCERPT_LINES = 40
EXCERPT_CHARS = 4000


class TerraformError(Exception):
    """A command failed: ``reason`` says why (Terraform's first error line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TerraformRunner:
    def __init__(
        self,
        source_root: Path,
        work_root: Path,
        *,
        binary: str = "terraform",
        state_bucket: str | None = None,
        state_region: str | None = None,
        s3_client: Any = None,
    ) -> None:
        self._source = source_root
        self._work = work_root
        self._binary = binary
        self._bucket = state_bucket
        self._state_region = state_region
        self._s3 = s3_client

    # ------------------------------------------------------------------ the port

    def plan(self, run: TerraformRun) -> TerraformResult:
        return self._run(run, "plan", self._plan)

    def apply(self, run: TerraformRun) -> TerraformResult:
        return self._run(run, "apply", self._apply)

    def destroy(self, run: TerraformRun) -> TerraformResult:
        return self._run(run, "destroy", self._destroy)

    # ------------------------------------------------------------------ the actions

    def _plan(self, session: _Session) -> TerraformResult:
        session.init()
        # -detailed-exitcode: 0 no changes, 2 changes, 1 an error
        session.command("plan", f"-out={session.plan_file.name}", "-detailed-exitcode", ok=(0, 2))
        self._keep_plan(session)
        return TerraformResult(ok=True, summary=session.summary(), log=str(session.log_path))

    def _apply(self, session: _Session) -> TerraformResult:
        session.init()
        self._fetch_plan(session)
        if not session.plan_file.exists():
            raise TerraformError(f"there is no saved plan of attempt {session.run.attempt} to apply: plan first")
        summary = session.summary()
        session.command("apply", "-auto-approve", session.plan_file.name)
        return TerraformResult(ok=True, summary=summary, outputs=session.outputs(), log=str(session.log_path))

    def _destroy(self, session: _Session) -> TerraformResult:
        session.init()
        session.command("destroy", "-auto-approve")
        return TerraformResult(ok=True, summary=None, log=str(session.log_path))

    # ------------------------------------------------------------------ running

    def _run(self, run: TerraformRun, action: str, body: Any) -> TerraformResult:
        session = _Session(self, run, action)
        try:
            session.prepare()
            result: TerraformResult = body(session)
            return result
        except TerraformError as e:
            return TerraformResult(
                ok=False, reason=redact(e.reason), log_excerpt=session.excerpt(), log=str(session.log_path)
            )
        except OSError as e:  # the binary missing, a directory that cannot be written
            session.note(f"error: {e}")
            return TerraformResult(
                ok=False,
                reason=redact(f"terraform could not run: {e}"),
                log_excerpt=session.excerpt(),
                log=str(session.log_path),
            )

    def _keep_plan(self, session: _Session) -> None:
        if self._bucket:
            self._client().upload_file(str(session.plan_file), self._bucket, session.plan_key)

    def _fetch_plan(self, session: _Session) -> None:
        if self._bucket and not session.plan_file.exists():
            try:
                self._client().download_file(self._bucket, session.plan_key, str(session.plan_file))
            except Exception as e:  # botocore's ClientError (404): no plan kept
                session.note(f"no saved plan at s3://{self._bucket}/{session.plan_key}: {type(e).__name__}")

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", region_name=self._state_region)
        return self._s3

    def backend_config(self, region: str) -> dict[str, str] | None:
        if not self._bucket:
            return None
        config = {"bucket": self._bucket, "key": f"regions/{region}/terraform.tfstate", "use_lockfile": "true"}
        if self._state_region:
            config["region"] = self._state_region
        return config


class _Session:
    """One action of one run: its directory, its log, the commands."""

    def __init__(self, runner: TerraformRunner, run: TerraformRun, action: str) -> None:
        self.runner = runner
        self.run = run
        self.action = action
        self.root = runner._work / run.region
        self.dir = self.root / "examples" / run.cloud
        self.log_path = self.root / "logs" / f"{run.attempt}-{action}.log"
        self.plan_file = self.dir / f"plan-{run.attempt}.tfplan"
        self.plan_key = f"regions/{run.region}/plan-{run.attempt}.tfplan"
        self._tf: Any = None

    def prepare(self) -> None:
        source = self.runner._source
        if not (source / "examples" / self.run.cloud).is_dir():
            raise TerraformError(f"there is no configuration for the cloud {self.run.cloud!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        for part in ("examples", "modules"):
            if (source / part).is_dir():
                shutil.copytree(
                    source / part,
                    self.root / part,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfplan", "terraform.tfvars.json"),
                )
        (self.dir / "terraform.tfvars.json").write_text(json.dumps(self.run.variables, indent=2, sort_keys=True))
        from python_terraform import Terraform

        self._tf = Terraform(working_dir=str(self.dir), terraform_bin_path=self.runner._binary)

    def init(self) -> None:
        backend = self.runner.backend_config(self.run.region)
        args = [f"-backend-config={k}={v}" for k, v in (backend or {}).items()]
        self.command("init", *args, *(["-reconfigure"] if backend else []))

    def command(self, name: str, *args: str, ok: tuple[int, ...] = (0,)) -> int:
        """Run ``terraform <name> -input=false -no-color <args>``; a return code not in ``ok`` raises."""
        flags = [] if name in ("show", "output") else ["-input=false"]
        started = time.monotonic()
        code, out, err = self._tf.cmd(name, *flags, "-no-color", *args, capture_output=True, raise_on_error=False)
        took = time.monotonic() - started
        self.note(f"$ terraform {name} {' '.join(args)}\n{out or ''}{err or ''}[exit {code} after {took:.1f}s]")
        if code not in ok:
            raise TerraformError(_reason(err or "", out or "", name, code))
        return int(code)

    def capture(self, name: str, *args: str) -> str:
        """A command whose output is data (``show -json``, ``output -json``): not logged whole."""
        code, out, err = self._tf.cmd(name, "-no-color", *args, capture_output=True, raise_on_error=False)
        if code != 0:
            self.note(f"$ terraform {name} {' '.join(args)}\n{err or ''}[exit {code}]")
            raise TerraformError(_reason(err or "", "", name, code))
        return str(out)

    def summary(self) -> PlanSummary:
        plan = json.loads(self.capture("show", "-json", self.plan_file.name))
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in plan.get("resource_changes") or []:
            for action in change.get("change", {}).get("actions", []):
                if action in counts:
                    counts[action] += 1
        summary = PlanSummary(add=counts["create"], change=counts["update"], destroy=counts["delete"])
        self.note(f"plan: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy")
        return summary

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.capture("output", "-json") or "{}")
        return {name: entry.get("value") for name, entry in raw.items() if isinstance(entry, Mapping)}

    def note(self, text: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(redact(text.rstrip("\n")) + "\n")

    def excerpt(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-EXCERPT_LINES:])[-EXCERPT_CHARS:]


def _reason(err: str, out: str, command: str, code: int) -> str:
    """Terraform's first ``Error: ...`` line (with the line after it when it is the detail), else the
    command and its exit code."""
    for text in (err, out):
        lines = [line.strip("│ ").strip() for line in text.splitlines()]
        for i, line in enumerate(lines):
            if line.startswith("Error:"):
                detail = next(
                    (x for x in lines[i + 1 : i + 8] if x and not x.startswith("on ") and not re.match(r"^\d+:", x)),
                    "",
                )
                return f"terraform {command}: {line}" + (f" ({detail})" if detail else "")
    return f"terraform {command} exited {code}"
