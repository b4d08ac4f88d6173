"""Reading ``micro.yaml``: YAML (safe loader only) -> plain data plus a map from field paths to line
numbers, handed to the pure validation in ``chalicelib.domain.manifest``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chalicelib.domain.manifest import MANIFEST_FILE, ServiceManifest, manifest_error, parse_manifest
from chalicelib.domain.ports import ResourceQuota

MAX_MANIFEST_BYTES = 64 * 1024
MAX_NODES = 10_000
# A manifest is a few levels deep (services -> entry -> env -> value). PyYAML composes nodes
# recursively: a document nested thousands of levels deep would exhaust Python's stack.
MAX_DEPTH = 32


class _TooDeepError(yaml.YAMLError):
    def __init__(self, line: int) -> None:
        super().__init__(f"nested more than {MAX_DEPTH} levels deep")
        self.line = line


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nodes nested more than MAX_DEPTH levels deep, at their line."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeepError(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def load_manifest(
    text: str,
    quota: ResourceQuota | None,
    *,
    root: Path | None = None,
    filename: str = MANIFEST_FILE,
) -> list[ServiceManifest]:
    """Parse and validate a manifest. With ``root`` (the checkout), every service's ``path`` must be a
    directory inside it. Raises ManifestError (a ValidationError) naming the field and the line."""
    data, lines = parse_yaml(text, filename=filename)
    exists: Callable[[str], bool] | None = None
    if root is not None:
        base = root.resolve()

        def exists(rel: str) -> bool:
            target = (base / rel).resolve()
            return (target == base or base in target.parents) and target.is_dir()

    return parse_manifest(data, lines, quota, directory_exists=exists, filename=filename)


def parse_yaml(text: str, *, filename: str = MANIFEST_FILE) -> tuple[Any, dict[str, int]]:
    """The document's data and ``{"services[0].port": 7, ...}`` (1-based lines; a mapping entry's
    line is its key's). Syntax errors, duplicate keys and unsafe tags become a ManifestError."""
    if len(text.encode("utf-8", "replace")) > MAX_MANIFEST_BYTES:
        raise manifest_error(f"is larger than {MAX_MANIFEST_BYTES // 1024} KiB", filename=filename)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _TooDeepError as exc:
        raise manifest_error(f"is nested more than {MAX_DEPTH} levels deep", line=exc.line, filename=filename) from None
    except RecursionError:  # a second line of defence: the depth limit should come first
        raise manifest_error("is nested too deeply", filename=filename) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, filename) from None
    except yaml.YAMLError as exc:
        raise manifest_error(f"is not valid YAML: {_trim(str(exc))}", filename=filename) from None
    if node is None:
        raise manifest_error("is empty: it must be a mapping with a 'services' list", line=1, filename=filename)
    lines: dict[str, int] = {"": node.start_mark.line + 1}
    try:
        _walk(node, "", lines, set(), filename)
    except RecursionError:  # merge keys can chain mappings deeper than the nodes nest
        raise manifest_error("is nested too deeply", filename=filename) from None
    try:
        loader = yaml.SafeLoader("")
        try:
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, filename) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise manifest_error(f"cannot be read: {_trim(str(exc))}", filename=filename) from None
    return data, lines


def _walk(node: yaml.Node, path: str, lines: dict[str, int], seen: set[int], filename: str) -> None:
    # Aliases share one node object: walk each node once (no blow-up on "billion laughs" documents).
    if id(node) in seen:
        return
    seen.add(id(node))
    if len(seen) > MAX_NODES:
        raise manifest_error(f"has more than {MAX_NODES} YAML nodes", filename=filename)
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.id}>"
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key == "<<":  # a merge key: its entries are the merged mapping's (explicit keys win)
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for item in merged:
                    _walk(item, path, lines, seen, filename)
                continue
            if key in keys:
                raise manifest_error(
                    f"duplicate key {key!r} (first on line {keys[key]})", field=child, line=line, filename=filename
                )
            keys[key] = line
            lines[child] = line
            _walk(value_node, child, lines, seen, filename)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, lines, seen, filename)


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str) -> Exception:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or exc.context or "invalid YAML"
    return manifest_error(f"invalid YAML: {_trim(problem)}", line=line, filename=filename)


def _trim(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
