"""coopkit's benchmarks: ``pytest benchmarks/`` (speed and sample quality), see
``docs/benchmarks.md``; ``python benchmarks/report.py`` regenerates that page."""
