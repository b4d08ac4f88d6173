#!/usr/bin/env bash
# Builds build/layer.zip: the pinned runtime dependencies and chalicelib/, laid out as a Lambda layer.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/layer
rm -rf "$out" build/layer.zip
mkdir -p "$out/python"
.venv/bin/pip install -q -r requirements.txt -c constraints.txt --target "$out/python" \
  --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all:
cp -r chalicelib "$out/python/chalicelib"
find "$out" -name __pycache__ -prune -exec rm -rf {} +
(cd "$out" && python3 -m zipfile -c ../layer.zip python)
echo "build/layer.zip: $(du -h build/layer.zip | cut -f1)"
