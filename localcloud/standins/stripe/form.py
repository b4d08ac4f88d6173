"""Stripe's request encoding: ``application/x-www-form-urlencoded`` bodies (and query strings) whose
keys nest with brackets.

The Stripe API takes form-encoded parameters, nested objects as ``a[b][c]=v`` and arrays as
``a[0][b]=v`` or ``a[]=v`` ("Expanding responses" and every request example in docs.stripe.com/api:
``-d "items[0][price]=price_..."``, ``-d "metadata[key]=value"``, ``-d "expand[]=..."``). The Python
library writes exactly that: ``stripe/_encode.py`` (``_api_encode``) indexes every array
(``%s[%d]``), writes booleans as ``true``/``false``, drops ``None``, and sends the brackets unescaped
(``_api_requestor.py``: ``.replace("%5B", "[")``). An empty value (``a=``) is how a field is unset.

``decode`` turns such pairs into dicts and lists; a key that cannot be read (``a[b``, ``a]``) or that
mixes an object and an array at one place is a ``FormError``, which the stand-in answers as Stripe
answers a malformed parameter: 400 ``invalid_request_error`` naming it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 8
MAX_INDEX = 1000


class FormError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def decode(raw: bytes | str) -> dict[str, Any]:
    """Form pairs -> nested dicts; arrays become lists (indexed ones in index order)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=5000)
    except ValueError as e:
        raise FormError("", f"the body could not be read: {e}") from e
    tree: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise FormError(key, f"Invalid parameter name: {key}")
        path = [match.group(1), *_PART.findall(match.group(2))]
        if len(path) > MAX_DEPTH:
            raise FormError(key, f"Too deeply nested parameter: {key}")
        _put(tree, path, value, key)
    return _listify(tree, "")


class _Appended(dict[str, Any]):
    """``a[]=x`` values: kept in order under generated indexes."""


def _put(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    head, rest = path[0], path[1:]
    if head == "":
        head = str(len(node))  # a[] appends
        if not isinstance(node, _Appended) and node:
            raise FormError(key, f"Invalid array: {key}")
    if not rest:
        if isinstance(node.get(head), dict):
            raise FormError(key, f"Invalid hash: {key} is both a value and an object")
        node[head] = value
        return
    child = node.get(head)
    if child is None:
        child = _Appended() if rest[0] == "" else {}
        node[head] = child
    elif not isinstance(child, dict):
        raise FormError(key, f"Invalid hash: {key} is both a value and an object")
    _put(child, rest, value, key)


def _listify(node: Any, name: str) -> Any:
    """Objects whose keys are all array indexes become lists, in index order."""
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, f"{name}[{k}]" if name else k) for k, v in node.items()}
    if out and (isinstance(node, _Appended) or all(k.isdigit() for k in out)):
        indexes = sorted(int(k) for k in out)
        if indexes[-1] > MAX_INDEX:
            raise FormError(name, f"Invalid array index in {name}: at most {MAX_INDEX}")
        return [out[str(i)] for i in indexes]
    return out
