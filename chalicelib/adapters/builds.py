"""The ``BuildPort`` of the local stage: a git checkout of the exact commit (GitArtifacts) and its
``micro.yaml`` validated against the namespace's quota. (On AWS the same port would build an image.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chalicelib.adapters.artifacts import GitArtifacts, read_manifest, refuse_platform_paths
from chalicelib.adapters.manifest_yaml import load_manifest
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.manifest import MANIFEST_FILE, ManifestError
from chalicelib.domain.ports import Build, ResourceQuota


class LocalBuilds:
    def __init__(self, root: Path, keep: int = 5, *, platform_dirs: Sequence[Path | str] = ()) -> None:
        self._artifacts = GitArtifacts(root, keep=keep)
        # never built from: the platform's data, the runtime's state, every namespace's artifacts
        self._platform_dirs = (*platform_dirs, root)

    def check_source(self, source: str) -> None:
        """Refuses, before anything is queued, a local source inside the platform's own directories."""
        refuse_platform_paths(source, self._platform_dirs)

    def _own_artifact(self, namespace: str, service: str, source: str) -> Path | None:
        """``source`` when it is a complete artifact of this very service (a retried build, a rollback)."""
        try:
            path = Path(source).resolve()
            if path.parent != (self._artifacts.root / namespace / service).resolve():
                return None
            return self._artifacts.exists(namespace, service, path.name)
        except (OSError, RuntimeError, ValueError, ValidationError):  # not an artifact's path or name
            return None

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
        own = self._own_artifact(namespace, service, source)
        if own is not None:  # this service's kept artifact (a retried build, a rollback): no rebuild
            path, sha = own, self._artifacts.commit_of(namespace, service, own.name) or ref
        else:
            self.check_source(source)
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
