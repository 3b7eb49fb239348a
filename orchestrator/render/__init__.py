"""Step 7, rendering: terminal tables, the speed-ratio table, HTML reports and figures."""
