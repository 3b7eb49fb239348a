"""Steps 2 and 4, plan and run: expand a spec into cells, schedule them, run each through a backend, read its result."""
