"""The ``BuildPort`` of the local stage: a git checkout of the exact commit (GitArtifacts) and its
``micro.yaml`` validated against the namespace's quota. (On AWS the same port would build an image.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chalicelib.adapters.artifacts import GitArtifacts, read_manifest
from chalicelib.adapters.manifest_yaml import load_manifest
from chalicelib.domain.manifest import MANIFEST_FILE, ManifestError
from chalicelib.domain.ports import Build, ResourceQuota


class LocalBuilds:
    def __init__(self, root: Path, keep: int = 5) -> None:
        self._artifacts = GitArtifacts(root, keep=keep)

    def prepare(
        self,
        namespace: str,
        service: str,
        deployment_id: str,
        source: str,
        ref: str,
        quota: ResourceQuota | None,
        protect: Sequence[str] = (),
    ) -> Build:
        kept = self._artifacts.exists(namespace, service, deployment_id)
        if kept is not None and Path(source) == kept:  # a rollback: the artifact is already there
            path, sha = kept, self._artifacts.commit_of(namespace, service, deployment_id) or ref
        elif Path(source).is_dir() and (Path(source) / MANIFEST_FILE).exists() and not (Path(source) / ".git").exists():
            path, sha = Path(source), ref  # a kept artifact of an earlier deployment (files only)
        else:
            path, sha = self._artifacts.prepare(namespace, service, deployment_id, source, ref, protect=protect)
        text = read_manifest(path)
        if text is None:
            raise ManifestError(f"the repository has no {MANIFEST_FILE} at its root", {"field": MANIFEST_FILE})
        manifest = load_manifest(text, quota, root=path)
        self._artifacts.prune(namespace, service, protect=[*protect, deployment_id])
        return Build(artifact=str(path), commit=sha, manifest=tuple(manifest))

    def kept(self, namespace: str, service: str, deployment_id: str) -> str | None:
        path = self._artifacts.exists(namespace, service, deployment_id)
        return str(path) if path is not None else None
