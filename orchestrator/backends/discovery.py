"""Plugin discovery in a hardened container of a framework's image: the `Discoverer` `plan` uses.

The container is a cell's (`engine.CellContainer`: no network, uid 1000, read-only root, all
capabilities dropped) with the workloads code and the plugin folders mounted read-only, and
nothing writable but its own /tmp: a plugin's import-time code cannot reach the host. A
discovery is cached by the plugins' digests (`orchestrator.run.plugins`); with no cache entry
and no engine, `plan` fails saying so (exit code of `EngineUnavailable`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Optional

import docker
import docker.errors
from rich.console import Console

from orchestrator.backends import CONTAINER_CODE, CONTAINER_PLUGINS
from orchestrator.backends.engine import CellContainer, ContainerExit, ContainerSpec, Mount, connect
from orchestrator.backends.local import WORKLOADS_DIR
from orchestrator.errors import BenchmatrixError, EngineUnavailable, Interrupted, SpecError, UsageError
from orchestrator.progress import step
from orchestrator.run.plugins import PluginFolder, cache_path, read_cached, write_cached
from workloads.discover import MARKER, model_infos, read_line
from workloads.models import ModelInfo

DISCOVERY_TIMEOUT_S = 300
DISCOVERY_MEMORY = "2g"
DISCOVERY_LABEL = "benchmatrix.discovery"


class ContainerDiscoverer:
    """Learns what plugins register by running `python -m workloads.discover` in one of a framework's images.

    `build`, when given, builds the first preferred image if none is here (`run` and `regress` build
    what is missing), skipping the tags in `unbuildable` and going on to the next tag when a build
    fails; when none can be had, or without `build` none is here, it is a usage error naming the
    framework (and each build's error, or the command that builds one). `console` gets the start
    and end lines of the discovery container (`orchestrator.progress.step`).
    """

    def __init__(
        self,
        spec_path: Path,
        client: Optional[docker.DockerClient] = None,
        build: Optional[Callable[[docker.DockerClient, str], None]] = None,
        cache_root: Optional[Path] = None,
        unbuildable: Collection[str] = (),
        console: Optional[Console] = None,
    ) -> None:
        self.spec_path = spec_path
        self.client = client
        self.build = build
        self.cache_root = cache_root
        self.unbuildable = frozenset(unbuildable)
        self.console = console

    def __call__(self, framework: str, images: tuple[str, ...], folders: tuple[PluginFolder, ...]) -> list[ModelInfo]:
        cached = cache_path(framework, folders, self.cache_root)
        models = read_cached(cached)
        if models is not None:
            return models
        client = self._client(framework)
        found = self._run(client, framework, self._image(client, framework, images), folders)
        write_cached(cached, found)
        return model_infos(found)

    def _client(self, framework: str) -> docker.DockerClient:
        if self.client is None:
            try:
                self.client = connect()
            except EngineUnavailable as exc:
                raise EngineUnavailable(
                    f"{self.spec_path} names model plugins: what they register under {framework} is learned in a "
                    f"container of its image, and none has been learned for these plugin files yet; {exc}"
                ) from exc
        return self.client

    def _image(self, client: docker.DockerClient, framework: str, images: tuple[str, ...]) -> str:
        for tag in images:
            try:
                client.images.get(tag)
            except docker.errors.ImageNotFound:
                continue
            return tag
        if self.build is None:
            raise UsageError(
                f"{self.spec_path} names model plugins, learned in a container of a {framework} image, and none "
                f"is built here ({', '.join(images)}): build one first "
                f"(`python -m orchestrator images build --framework {framework}`), or `run` the spec, which builds it"
            )
        failed: list[str] = []
        for tag in images:
            if tag in self.unbuildable:
                continue
            try:
                self.build(client, tag)
            except (Interrupted, EngineUnavailable):
                raise
            except BenchmatrixError as exc:
                failed.append(f"{tag}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
                continue
            return tag
        raise UsageError(
            f"{self.spec_path} names model plugins, learned in a container of a {framework} image, and no "
            f"{framework} image is here or could be built"
            + (f" ({'; '.join(failed)})" if failed else f" ({', '.join(images)} cannot be built here)")
        )

    def _run(
        self, client: docker.DockerClient, framework: str, image: str, folders: tuple[PluginFolder, ...]
    ) -> dict[str, Any]:
        targets = self._targets(folders)
        with step(f"discover plugins of {framework} in {image}", self.console):
            ended = self._launch(client, image, folders, targets)
        tail = ended.logs.strip()[-2000:]
        try:
            found = read_line(ended.logs)
            if found is not None and "error" in found:
                index = int(found["folder"])
                message = str(found["error"]).replace(targets[index], str(folders[index].path))
            elif found is not None:
                model_infos(found)  # the shape a cache entry and `plan` need
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise UsageError(
                f"plugin discovery of {', '.join(str(folder.path) for folder in folders)} in {image} printed a "
                f"malformed {MARKER} line ({type(exc).__name__}: {exc}), perhaps a plugin's own print; "
                f"its output: {tail or 'none'}"
            ) from exc
        if found is None:
            raise UsageError(
                f"plugin discovery in {image} printed no {MARKER} line (exit code {ended.exit_code}"
                + (", timed out" if ended.timed_out else "")
                + f"); its output: {tail or 'none'}"
            )
        if "error" in found:
            raise SpecError(str(self.spec_path), f"plugins.{index}", message)
        return found

    def _targets(self, folders: tuple[PluginFolder, ...]) -> list[str]:
        """Where each folder is seen by the discovery (the cell's own mount points)."""
        return [f"{CONTAINER_PLUGINS}/{index}" for index in range(len(folders))]

    def _launch(
        self, client: docker.DockerClient, image: str, folders: tuple[PluginFolder, ...], targets: list[str]
    ) -> ContainerExit:
        """`python -m workloads.discover` in a cell's hardened container, each folder mounted read-only."""
        spec = ContainerSpec(
            image=image,
            command=["python3", "-m", "workloads.discover", *targets],
            mounts=[
                Mount(WORKLOADS_DIR, f"{CONTAINER_CODE}/workloads"),
                *(Mount(folder.path, target) for folder, target in zip(folders, targets)),
            ],
            labels={DISCOVERY_LABEL: image},
            environment={"PYTHONPATH": CONTAINER_CODE},
            memory=DISCOVERY_MEMORY,
        )
        with CellContainer(client, spec) as container:
            return container.run(DISCOVERY_TIMEOUT_S)
