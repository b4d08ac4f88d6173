"""The catalog of meters and plans, read once from ``chalicelib/catalog.json`` (data, not code: a new
meter or plan is a change to that file)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from chalicelib.domain.metering import Catalog

CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.json"


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    return Catalog.from_dict(json.loads(path.read_text()))
