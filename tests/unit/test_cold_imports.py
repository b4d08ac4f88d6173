"""Cold starts: the API and the billing handlers import the stripe library on first use, not with the
module (bench/cold_start.py measures the time; this keeps the import out)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize("module", ["app", "functions.billing.handler", "functions.metering.handler"])
def test_loading_a_handler_imports_no_stripe(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "from chalicelib.composition import get_container\n"
        "get_container()\n"
        "print(sorted(m for m in sys.modules if m == 'stripe' or m.startswith('stripe.')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "PLATFORM_STAGE": "local"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"{module} imports stripe at load: {out.stdout.strip()[:200]}"
