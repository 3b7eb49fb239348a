"""The plugin discoverer around its container: which image it runs in (building one when none is here, never an
unbuildable one, the next when a build fails), the start/end lines of its steps, and what a malformed
`BENCHMATRIX_PLUGINS` line becomes (a usage error, not a crash).
The container is `tests.discovery.CannedDiscoverer`'s."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.errors import BuildFailed, ExitCode, ImageNotBuildable, Interrupted, SpecError, UsageError
from orchestrator.run.plugins import PluginFolder
from tests.discovery import CannedDiscoverer
from workloads.discover import read_line

FAILED = BuildFailed("pip: no matching wheel")
TAGS = ("benchmatrix/mxnet:1.9.1-cpu", "benchmatrix/mxnet:1.9.1-mkl", "benchmatrix/mxnet:1.6.0-cpu")
MODEL = {"name": "tiny", "input_kind": "image", "description": "a plugin model", "apis": ["gluon"]}
GOOD = "a plugin's own chatter\nBENCHMATRIX_PLUGINS " + json.dumps({"models": [MODEL]}) + "\n"


def folders(tmp_path: Path) -> tuple[PluginFolder, ...]:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    return (PluginFolder(tmp_path / "plugins", "0" * 64),)


class Builds:
    """A `build` that fails for the tags in `failing` (with `error`) and records every tag it is asked for."""

    def __init__(self, failing: tuple[str, ...] = (), error: Exception = FAILED):
        self.failing = failing
        self.error = error
        self.asked: list[str] = []

    def __call__(self, client: object, tag: str) -> None:
        self.asked.append(tag)
        if tag in self.failing:
            raise self.error
        client.images.present.add(tag)  # type: ignore[attr-defined]


def test_a_present_image_is_used_and_nothing_is_built(tmp_path):
    build = Builds()
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, present=(TAGS[2],), build=build)
    assert [m.name for m in discover("mxnet", TAGS, folders(tmp_path))] == ["tiny"]
    assert (build.asked, discover.launched) == ([], [TAGS[2]])


def test_a_failed_build_falls_back_to_the_next_tag(tmp_path):
    build = Builds(failing=(TAGS[0],))
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, build=build)
    assert [m.name for m in discover("mxnet", TAGS, folders(tmp_path))] == ["tiny"]
    assert (build.asked, discover.launched) == ([TAGS[0], TAGS[1]], [TAGS[1]])


def test_images_the_catalog_marks_unbuildable_are_never_built(tmp_path):
    build = Builds()
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, build=build, unbuildable=TAGS[:2])
    discover("mxnet", TAGS, folders(tmp_path))
    assert (build.asked, discover.launched) == ([TAGS[2]], [TAGS[2]])


def test_when_no_image_of_the_framework_can_be_had_it_is_a_usage_error_naming_it_and_the_builds(tmp_path):
    build = Builds(failing=TAGS)
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, build=build, unbuildable=TAGS[:1])
    with pytest.raises(UsageError, match=r"mxnet image is here or could be built.*1\.9\.1-mkl: pip: no matching") as e:
        discover("mxnet", TAGS, folders(tmp_path))
    assert e.value.exit_code == ExitCode.USAGE and not isinstance(e.value, ImageNotBuildable)
    assert build.asked == list(TAGS[1:]) and discover.launched == []


def test_an_interrupt_during_a_build_is_not_taken_for_a_failed_build(tmp_path):
    build = Builds(failing=TAGS, error=Interrupted("interrupted"))
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, build=build)
    with pytest.raises(Interrupted):
        discover("mxnet", TAGS, folders(tmp_path))
    assert build.asked == [TAGS[0]]


def test_the_discovery_container_prints_start_and_end_lines_in_a_log(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", GOOD, present=TAGS[:1], console=console)
    discover("mxnet", TAGS, folders(tmp_path))
    lines = out.getvalue().splitlines()
    assert [line.split("] ", 1)[1].split(" in 0")[0] for line in lines] == [
        f"discover plugins of mxnet in {TAGS[0]}: started",
        f"discover plugins of mxnet in {TAGS[0]}: done",
    ]


@pytest.mark.parametrize(
    "marker",
    [
        "BENCHMATRIX_PLUGINS {not json",
        "BENCHMATRIX_PLUGINS []",
        'BENCHMATRIX_PLUGINS {"models": 3}',
        'BENCHMATRIX_PLUGINS {"models": [{"name": "x"}]}',
        'BENCHMATRIX_PLUGINS {"error": "boom", "folder": 7}',
        'BENCHMATRIX_PLUGINS {"error": "boom"}',
    ],
)
def test_a_malformed_marker_line_is_a_usage_error_naming_the_plugin_folder_and_the_output(tmp_path, marker):
    logs = "loading my plugin\n" + marker + "\n"
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", logs, present=TAGS[:1], exit_code=1)
    with pytest.raises(UsageError, match="malformed BENCHMATRIX_PLUGINS line") as e:
        discover("mxnet", TAGS, folders(tmp_path))
    assert e.value.exit_code == ExitCode.USAGE and not isinstance(e.value, SpecError)
    assert str(tmp_path / "plugins") in str(e.value) and "loading my plugin" in str(e.value)
    assert not list((tmp_path / "cache").rglob("*.json"))  # nothing malformed is cached


def test_a_folder_that_fails_to_import_is_still_a_spec_error_at_its_index(tmp_path):
    logs = 'BENCHMATRIX_PLUGINS {"error": "ImportError in /code/plugins/0/m.py", "folder": 0}\n'
    discover = CannedDiscoverer(tmp_path / "m.yaml", tmp_path / "cache", logs, present=TAGS[:1], exit_code=2)
    discover._targets = lambda folders: ["/code/plugins/0"]  # type: ignore[method-assign]
    with pytest.raises(SpecError, match=r"plugins\.0.*ImportError in .*/plugins/m\.py"):
        discover("mxnet", TAGS, folders(tmp_path))


@pytest.mark.parametrize("payload", ["[]", '"models"', "3", "null"])
def test_a_marked_line_that_is_not_a_json_object_is_refused_where_it_is_read(payload):
    with pytest.raises(ValueError, match="not a JSON object"):
        read_line(f"BENCHMATRIX_PLUGINS {payload}\n")
    assert read_line("no marker\n") is None
