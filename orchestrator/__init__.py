"""benchmatrix orchestrator: spec → plan → image → backend → result → store → report."""

__version__ = "0.1.0"
