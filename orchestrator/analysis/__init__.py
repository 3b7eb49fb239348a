"""Step 6, analysis: statistics over repeats, the regression verdict, bisect, history, reproduce."""
