"""llmx benchmarks: overhead against raw aiohttp and peer clients, on a local fake server.

Run ``python -m bench`` (full run, < 10 min), ``python -m bench --quick`` (smoke run,
< 60 s) or ``python -m bench profile``; see ``bench/README.md``. Importing this package
imports nothing else, so the driver processes stay lean.
"""
