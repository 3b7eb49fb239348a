"""The one clock the orchestrator stamps runs, cells and bundles with (aware, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
