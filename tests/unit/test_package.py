"""`make package` (infra/package.py): the zips Terraform deploys are the same bytes for the same inputs."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from infra import package


def _tree(root: Path, mtime: int) -> Path:
    (root / "functions" / "alpha").mkdir(parents=True)
    (root / "functions" / "__init__.py").write_text("")
    (root / "functions" / "alpha" / "__init__.py").write_text("")
    (root / "functions" / "alpha" / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    (root / "functions" / "alpha" / "__pycache__").mkdir()
    (root / "functions" / "alpha" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(os.urandom(16))
    (root / "functions" / "beta").mkdir()
    (root / "functions" / "beta" / "handler.py").write_text("x = 1\n")
    (root / "app.py").write_text("app = None\n")
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime))
    return root


def test_the_same_sources_give_byte_identical_zips(tmp_path: Path) -> None:
    fn = {"name": "alpha-fn", "handler": "functions.alpha.handler.handler"}
    first = _tree(tmp_path / "a", mtime=1_000_000_000)
    second = _tree(tmp_path / "b", mtime=1_700_000_000)  # other timestamps, another place, a new .pyc

    zips = [package.function_zip(fn, root / "build", root=root) for root in (first, second)]
    apis = [package.api_zip(root / "build", root=root) for root in (first, second)]

    assert zips[0].read_bytes() == zips[1].read_bytes()
    assert apis[0].read_bytes() == apis[1].read_bytes()
    assert package.package_hash(zips[0]) == package.package_hash(zips[1])


def test_a_function_zip_holds_its_own_package_and_nothing_compiled(tmp_path: Path) -> None:
    root = _tree(tmp_path, mtime=1_000_000_000)
    out = package.function_zip(
        {"name": "alpha-fn", "handler": "functions.alpha.handler.handler"}, tmp_path / "build", root=root
    )

    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [
            "functions/__init__.py",
            "functions/alpha/__init__.py",
            "functions/alpha/handler.py",
        ]
        assert {info.date_time for info in archive.infolist()} == {package.FIXED_TIME}
        assert {info.external_attr >> 16 for info in archive.infolist()} == {0o100644}


def test_a_change_of_content_changes_the_hash(tmp_path: Path) -> None:
    root = _tree(tmp_path, mtime=1_000_000_000)
    fn = {"name": "alpha-fn", "handler": "functions.alpha.handler.handler"}
    before = package.package_hash(package.function_zip(fn, tmp_path / "build", root=root))
    (root / "functions" / "alpha" / "handler.py").write_text("def handler(event, context):\n    return {'v': 2}\n")

    assert package.package_hash(package.function_zip(fn, tmp_path / "build", root=root)) != before


def test_every_declared_function_is_packaged_with_its_handler_module(tmp_path: Path) -> None:
    for fn in package.declared_functions(package.ROOT / "infra" / "resources.json"):
        with zipfile.ZipFile(package.function_zip(fn, tmp_path)) as archive:
            module = "/".join(fn["handler"].split(".")[:-1]) + ".py"
            assert module in archive.namelist(), fn["name"]


def test_the_api_definition_routes_every_path_to_the_placeholder(tmp_path: Path) -> None:
    swagger = json.loads(package.api_swagger(tmp_path).read_text())

    assert "/v1/health" in swagger["paths"]
    integrations = [op["x-amazon-apigateway-integration"] for path in swagger["paths"].values() for op in path.values()]
    assert integrations and {i["uri"] for i in integrations} == {package.INVOKE_ARN_PLACEHOLDER}
    assert {i["type"] for i in integrations} == {"aws_proxy"}


def test_a_layer_over_lambdas_unzipped_quota_is_refused_and_one_over_50_mb_zipped_is_not(tmp_path: Path) -> None:
    """The layer goes through S3, so only Lambda's 250 MB unzipped (code and layers together) limits it."""
    layer, small = tmp_path / "layer.zip", tmp_path / "fn.zip"
    with zipfile.ZipFile(layer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/big.bin", b"\0" * 3_000_000)  # 3 MB unzipped, a few KB zipped
    with zipfile.ZipFile(small, "w") as archive:
        archive.writestr("functions/__init__.py", "x" * 1000)

    package.check_unzipped(layer, [small], limit=3_001_000)
    with pytest.raises(SystemExit, match=r"fn\.zip with layer\.zip is 3001000 bytes unzipped"):
        package.check_unzipped(layer, [small], limit=3_000_999)
    assert package.UNZIPPED_LIMIT == 262_144_000
    assert not hasattr(package, "DIRECT_UPLOAD_LIMIT")
