"""`make package`: what Terraform deploys, built by the project (no archive provider), into build/.

- ``build/layer.zip``: the pinned runtime dependencies (``requirements.txt`` with ``constraints.txt``, for
  Lambda's platform: manylinux x86_64, CPython 3.11) and ``chalicelib/``, under ``python/``;
- ``build/api.zip``: ``app.py``, the Chalice app (its handler is ``app.app``; the rest is in the layer);
- ``build/functions/<name>.zip``: one per function of ``infra/resources.json``: ``functions/__init__.py``
  and the handler's own package;
- ``build/api-swagger.json``: the REST API definition Chalice generates from the app's routes (Swagger 2.0,
  one resource per route: Chalice dispatches on the route's resource path), its Lambda integration URI left
  as ``@@API_HANDLER_INVOKE_ARN@@`` for Terraform to fill;
- ``build/packages.tfvars.json``: the paths and hashes (base64 SHA-256, what ``source_code_hash`` takes)
  of all of these, for ``terraform plan -var-file=...``.

Every zip is deterministic: entries sorted by name, one fixed timestamp, permissions 0644 (0755 where the
source is executable), no ``__pycache__``, no compiled files; the same inputs give the same bytes. The
dependencies are installed once per content of the requirement files (cached under ``build/.cache``)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store
INVOKE_ARN_PLACEHOLDER = "@@API_HANDLER_INVOKE_ARN@@"
# Lambda's quota on a function's code and layers together, unzipped ("Lambda quotas": 262,144,000 bytes).
# The layer goes through S3 (infra/modules/platform/functions.tf), so the 50 MB of an inline upload does not apply.
UNZIPPED_LIMIT = 262_144_000
SKIPPED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
# Built locally as wheels: sdists only on PyPI, pure Python (pip takes only wheels for another platform).
SDIST_ONLY = ("python-terraform",)


def files_under(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and not SKIPPED_PARTS.intersection(p.relative_to(directory).parts)
        and p.suffix not in SKIPPED_SUFFIXES
    )


def write_zip(out: Path, entries: Iterable[tuple[str, Path]]) -> None:
    """A zip of ``(name in the zip, file)`` pairs that depends on the files' contents and names only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(entries, key=lambda entry: entry[0]):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the permissions below are read
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)


def package_hash(path: Path) -> str:
    """Terraform's filebase64sha256: what aws_lambda_function.source_code_hash compares."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def described(path: Path) -> dict[str, str]:
    return {"path": str(path.resolve()), "hash": package_hash(path)}


def declared_functions(resources_file: Path) -> list[dict[str, Any]]:
    functions: list[dict[str, Any]] = json.loads(resources_file.read_text(encoding="utf-8"))["functions"]
    return functions


def function_zip(function: dict[str, Any], out_dir: Path, root: Path = ROOT) -> Path:
    """functions/__init__.py and the package of the function's handler (``functions.<package>.handler.x``)."""
    parts = function["handler"].split(".")
    if len(parts) < 3 or parts[0] != "functions":
        raise ValueError(f"function {function['name']}: handler {function['handler']!r} is not functions.<package>...")
    package = root / "functions" / parts[1]
    if not package.is_dir():
        raise ValueError(f"function {function['name']}: no package {package}")
    entries = [("functions/__init__.py", root / "functions" / "__init__.py")]
    entries += [(f"functions/{parts[1]}/{p.relative_to(package).as_posix()}", p) for p in files_under(package)]
    out = out_dir / "functions" / f"{function['name']}.zip"
    write_zip(out, entries)
    return out


def api_zip(out_dir: Path, root: Path = ROOT) -> Path:
    out = out_dir / "api.zip"
    write_zip(out, [("app.py", root / "app.py")])
    return out


def api_swagger(out_dir: Path) -> Path:
    """Chalice's Swagger of the app's routes, with the integration URI left for Terraform."""
    from chalice.deploy.swagger import SwaggerGenerator

    class _Placeholder(SwaggerGenerator):  # type: ignore[misc]
        def _uri(self, lambda_arn: str | None = None) -> str:
            return INVOKE_ARN_PLACEHOLDER

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PLATFORM_STAGE", "local")
    from app import app

    swagger = _Placeholder("", {}).generate_swagger(app)
    out = out_dir / "api-swagger.json"
    out.write_text(json.dumps(swagger, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


def _site_packages(cache: Path) -> Path:
    """The pinned dependencies for Lambda's platform, installed once per content of the requirement files."""
    key = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in ("requirements.txt", "constraints.txt")))
    site = cache / f"site-{key.hexdigest()[:16]}"
    if (site / ".complete").exists():
        return site
    shutil.rmtree(site, ignore_errors=True)
    wheels = cache / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    pins = {
        line.split("==")[0].strip().lower(): line.strip()
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    for name in SDIST_ONLY:
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [*pip, "wheel", "--no-deps", "-w", str(wheels), pins[name]], check=True
        )
    subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            *pip,
            "install",
            "-r",
            str(ROOT / "requirements.txt"),
            "-c",
            str(ROOT / "constraints.txt"),
            "--target",
            str(site / "python"),
            "--platform",
            "manylinux2014_x86_64",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
            "--only-binary=:all:",
            "--find-links",
            str(wheels),
            "--no-compile",
        ],
        check=True,
    )
    # Console scripts carry this machine's interpreter path in their shebang: not needed on Lambda.
    shutil.rmtree(site / "python" / "bin", ignore_errors=True)
    (site / ".complete").touch()
    return site


def layer_zip(out_dir: Path, site: Path, root: Path = ROOT) -> Path:
    python = site / "python"
    entries = [(f"python/{p.relative_to(python).as_posix()}", p) for p in files_under(python)]
    entries = [e for e in entries if not e[0].startswith("python/chalicelib/")]
    entries += [
        (f"python/chalicelib/{p.relative_to(root / 'chalicelib').as_posix()}", p)
        for p in files_under(root / "chalicelib")
    ]
    out = out_dir / "layer.zip"
    write_zip(out, entries)
    return out


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def check_unzipped(layer: Path, packages: Iterable[Path], limit: int = UNZIPPED_LIMIT) -> None:
    """Each function's code and the layer, unzipped, within Lambda's quota: else no apply could deploy them."""
    base = unzipped_size(layer)
    for path in packages:
        total = base + unzipped_size(path)
        if total > limit:
            raise SystemExit(
                f"{path.name} with {layer.name} is {total} bytes unzipped: over Lambda's {limit} bytes "
                "for a function's code and layers (move a heavy dependency out of requirements.txt, or give "
                "that function a layer of its own)"
            )


def build(out_dir: Path, *, with_layer: bool = True) -> dict[str, Any]:
    functions = {
        f["name"]: described(function_zip(f, out_dir)) for f in declared_functions(ROOT / "infra" / "resources.json")
    }
    variables: dict[str, Any] = {
        "function_packages": functions,
        "api_package": described(api_zip(out_dir)),
        "api_definition_file": str(api_swagger(out_dir).resolve()),
    }
    if with_layer:
        layer = layer_zip(out_dir, _site_packages(out_dir / ".cache"))
        check_unzipped(layer, [Path(p["path"]) for p in (*functions.values(), variables["api_package"])])
        variables["layer_package"] = described(layer)
    (out_dir / "packages.tfvars.json").write_text(
        json.dumps(variables, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return variables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output directory (default build/)")
    args = parser.parse_args(argv)
    variables = build(args.out)
    packages = [variables["layer_package"], variables["api_package"], *variables["function_packages"].values()]
    for package in packages:
        size = Path(package["path"]).stat().st_size
        print(f"{Path(package['path']).relative_to(args.out.resolve())}: {size / 1e6:.1f} MB  {package['hash']}")
    print(f"variables for terraform: {args.out / 'packages.tfvars.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
