"""Step 1, what to run: the matrix spec, the framework catalog, and strict validation of every value."""
