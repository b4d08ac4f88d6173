"""The GitHub Action's script (action.yml): deploy one service through the platform's API, follow the
deployment, print its steps, and exit non-zero when it does not succeed. Standard library only, so it
runs on any runner with Python 3.

Environment: PLATFORM_API_URL, PLATFORM_TOKEN (a token with the deploy scope), DEPLOY_NAMESPACE,
DEPLOY_SERVICE, DEPLOY_SOURCE, DEPLOY_REF, DEPLOY_TIMEOUT (seconds, default 900), GITHUB_OUTPUT (set
by Actions: where the outputs go)."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    if not url.startswith(("https://", "http://")):
        print(f"::error::the API address must be http(s): {url}", flush=True)
        sys.exit(2)
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "micro-platform-action/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the configured API)
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as e:
        try:
            error = json.loads(e.read())["error"]
            message = f"{error['message']} ({error['code']})"
        except (ValueError, KeyError):
            message = str(e)
        print(f"::error::the platform answered {e.code}: {message}", flush=True)
        sys.exit(1)
    except urllib.error.URLError as e:
        print(f"::error::cannot reach the platform at {url}: {e.reason}", flush=True)
        sys.exit(1)


def output(name: str, value: str) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a") as f:
            f.write(f"{name}={value}\n")


def main() -> int:
    env = os.environ
    try:
        api, token = env["PLATFORM_API_URL"].rstrip("/"), env["PLATFORM_TOKEN"]
        ns, svc, source, ref = env["DEPLOY_NAMESPACE"], env["DEPLOY_SERVICE"], env["DEPLOY_SOURCE"], env["DEPLOY_REF"]
    except KeyError as e:
        print(f"::error::missing input {e.args[0]}", flush=True)
        return 2
    timeout = float(env.get("DEPLOY_TIMEOUT") or 900)
    base = f"{api}/v1/namespaces/{ns}/services/{svc}/deployments"
    key = "commit" if len(ref) >= 7 and all(c in "0123456789abcdefABCDEF" for c in ref) else "ref"
    dep = call("POST", base, token, {"source": source, key: ref})
    print(f"deployment {dep['id']} of {svc} at {ref} in {ns}: {dep['status']}", flush=True)
    output("deployment-id", dep["id"])
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        dep = call("GET", f"{base}/{dep['id']}", token)
        for step in dep.get("steps", []):
            if seen.get(step["name"]) != step["status"]:
                seen[step["name"]] = step["status"]
                detail = f" ({step['detail']})" if step.get("detail") else ""
                print(f"  {step['name']}: {step['status']}{detail}", flush=True)
        if dep.get("finished"):  # the API's word: the deployment changes no more
            break
        if time.monotonic() > deadline:
            print(f"::error::deployment {dep['id']} did not finish within {timeout:.0f} s", flush=True)
            output("status", dep["status"])
            return 1
        time.sleep(float(env.get("DEPLOY_POLL_SECONDS") or 2))
    output("status", dep["status"])
    if dep["status"] != "succeeded":
        print(f"::error::deployment {dep['id']} {dep['status']}: {dep.get('reason') or 'no reason given'}", flush=True)
        return 1
    print(f"deployment {dep['id']} succeeded: commit {dep.get('commit')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
