"""``.ci/run`` on a fresh machine: it installs what the dashboard's browser tests need (Debian's Chromium
and npm) before ``make test``, with sudo when not root, and runs ``make test`` with ``CI=true`` so
that those tests fail rather than skip when a browser is still missing. Run here against stubs of
apt-get, sudo and make on a PATH that has neither chromium nor npm: nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers import ROOT


def fake_bin(tmp_path: Path, *, uid: int, present: tuple[str, ...] = ()) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("bash", "env", "python3", "uname", "date", "dirname", "cat", "head", "basename"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    stubs = {
        "apt-get": f'echo "apt-get $*" >> {log}',
        "sudo": f'echo "sudo $1" >> {log}; exec "$@"',
        "id": f"echo {uid}",
        "make": f'echo "make $* CI=$CI" >> {log}',
        "terraform": "echo Terraform v1.11.0",  # .ci/run checks terraform and the AWS provider's mirror first
        **{tool: "exit 0" for tool in present},
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir, log


def ci_run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PLATFORM_CHROMIUM")}
    env["PATH"] = str(bin_dir)
    mirror = bin_dir.parent / "tf-plugins"
    provider = mirror / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0" / "linux_amd64"
    provider.mkdir(parents=True, exist_ok=True)
    (provider / "terraform-provider-aws_v5.100.0_x5").write_text("")
    env["TF_PLUGIN_MIRROR"] = str(mirror)
    return subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_fresh_machine_gets_chromium_and_npm_from_apt_with_sudo_then_make_test_under_ci(tmp_path: Path) -> None:
    bin_dir, log = fake_bin(tmp_path, uid=1000)
    result = ci_run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert "installing chromium npm from Debian's packages" in result.stdout
    assert log.read_text().splitlines() == [
        "sudo apt-get",
        "apt-get update -qq",
        "sudo env",
        "apt-get install -y -qq chromium npm",
        "make test CI=true",
    ]


def test_as_root_only_what_is_missing_is_installed_without_sudo(tmp_path: Path) -> None:
    bin_dir, log = fake_bin(tmp_path, uid=0, present=("npm",))
    result = ci_run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "apt-get update -qq",
        "apt-get install -y -qq chromium",
        "make test CI=true",
    ]


def test_nothing_is_installed_when_both_are_there(tmp_path: Path) -> None:
    bin_dir, log = fake_bin(tmp_path, uid=1000, present=("chromium", "npm"))
    result = ci_run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["make test CI=true"]
