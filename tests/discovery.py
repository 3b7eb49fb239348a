"""A plugin discoverer for unit tests: the real `ContainerDiscoverer` (cache, protocol, error mapping) with its
container swapped for a child process on the host. Only for tests of `plan`'s logic; the engine test
`tests/integration/test_plugin_discovery.py` proves the real one keeps plugin code off the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import docker
import docker.errors

from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.backends.engine import ContainerExit
from orchestrator.run.plugins import PluginFolder
from tests.conftest import REPO


class HostDiscoverer(ContainerDiscoverer):
    def __init__(self, spec_path: Path, cache_root: Path) -> None:
        super().__init__(spec_path, cache_root=cache_root)
        self.launched: list[str] = []  # the image of each discovery that was not a cache hit

    def _client(self, framework: str) -> docker.DockerClient:
        return None  # type: ignore[return-value]  # no engine: nothing below uses it

    def _image(self, client: Optional[docker.DockerClient], framework: str, images: tuple[str, ...]) -> str:
        return images[0]

    def _targets(self, folders: tuple[PluginFolder, ...]) -> list[str]:
        return [str(folder.path) for folder in folders]

    def _launch(
        self, client: object, image: str, folders: tuple[PluginFolder, ...], targets: list[str]
    ) -> ContainerExit:
        self.launched.append(image)
        done = subprocess.run(
            [sys.executable, "-m", "workloads.discover", *targets],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return ContainerExit(
            exit_code=done.returncode, timed_out=False, oom_killed=False, logs=done.stdout + done.stderr
        )


class Images:
    """A Docker client's `images` holding only `present` (the only part the discoverer asks before a container)."""

    def __init__(self, present: tuple[str, ...] = ()) -> None:
        self.present = set(present)

    def get(self, tag: str) -> str:
        if tag not in self.present:
            raise docker.errors.ImageNotFound(f"no such image: {tag}")
        return tag


class FakeClient:
    def __init__(self, present: tuple[str, ...] = ()) -> None:
        self.images = Images(present)


class CannedDiscoverer(ContainerDiscoverer):
    """The real discoverer (image choice and builds, step lines, reading the output) whose container prints
    `logs` and exits `exit_code`; its client is a `FakeClient` with the images `present`."""

    def __init__(
        self,
        spec_path: Path,
        cache_root: Path,
        logs: str,
        present: tuple[str, ...] = (),
        exit_code: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(spec_path, client=FakeClient(present), cache_root=cache_root, **kwargs)  # type: ignore[arg-type]
        self.logs = logs
        self.exit_code = exit_code
        self.launched: list[str] = []

    def _launch(
        self, client: object, image: str, folders: tuple[PluginFolder, ...], targets: list[str]
    ) -> ContainerExit:
        self.launched.append(image)
        return ContainerExit(exit_code=self.exit_code, timed_out=False, oom_killed=False, logs=self.logs)
