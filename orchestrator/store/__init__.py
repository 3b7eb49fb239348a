"""Step 5, the results store: schema, migrations, queries."""
