"""The real bench behind `bisect.search`: each step a `regress` of GOOD against one version, on the
engine (`regress`'s images and rounds); `regress --bisect` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from rich.console import Console

from orchestrator.analysis import bisect, compare, regress
from orchestrator.analysis.compare import BrokenSide
from orchestrator.backends.engine import connect
from orchestrator.images.build import image_state
from orchestrator.run.runner import run_matrix
from orchestrator.spec.catalog import load_catalog


@dataclass
class RegressBench:
    """The search's bench on the real engine: each step is a `regress` of GOOD against one version,
    named `<name>-<version>` (the same when resumed) and stored with the step's design (its looks and
    its share of alpha), so `compare` on a step's runs gives the step's verdict."""

    search: bisect.SearchRange
    request: regress.RegressRequest  # baseline GOOD; the candidate is set per version
    settings: compare.Settings  # a step's: alpha / steps, looks planned
    name: str  # this search's id (from its state key)
    console: Console
    run_one: regress.RunOne = run_matrix  # one round (a fake at its shape in unit tests)
    built: list[str] = field(default_factory=list)  # tags this process built (not found current)
    _rounds: dict[str, regress.Rounds] = field(default_factory=dict)

    def rounds(self, version: str) -> regress.Rounds:
        if version not in self._rounds:
            prepared = regress.prepare(replace(self.request, candidate=self.search.selection(version)))
            self._rounds[version] = replace(prepared, name=f"{self.name}-{version}", alpha=self.settings.alpha)
        return self._rounds[version]

    def build(self, version: str) -> Optional[BrokenSide]:
        catalog = load_catalog()
        client = connect()
        for selection in (self.request.baseline, self.search.selection(version)):
            assert selection.framework is not None  # both sides of a step are framework builds
            entry = catalog.find(selection.framework, selection.version, selection.variant)[0]
            if image_state(client, catalog, entry) != "current" and entry.tag not in self.built:
                self.built.append(entry.tag)
        return regress.build_images(self.rounds(version), self.console)

    def add_round(self, version: str, runs: list[str]) -> str:
        rounds = self.rounds(version)
        rounds.runs = list(runs)
        regress.run_rounds(rounds, len(runs) + 1, self.settings.looks, self.console, self.run_one)
        return rounds.runs[-1]

    def judge(self, version: str, runs: list[str]) -> bisect.Judgement:
        rounds = self.rounds(version)
        rounds.runs = list(runs)
        return bisect.verdict(regress.judge_rounds(rounds, self.settings))
