"""Analysis: the export (tidy tables, masked arms before lock), analysis runs in the background, the HTML report and
JSON results, and the statistics themselves (`analysis.stats`, pure pandas/NumPy/SciPy with no Django import).
Reads every domain app; nothing but the demo and config sits above it (docs/architecture.md)."""
