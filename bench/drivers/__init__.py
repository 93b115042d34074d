"""Driver processes: one module per client family, each a ``python -m`` entry point.

They import only the standard library, :mod:`bench.wire` and their own client
library, so the peer drivers run with the peers venv's Python as well.
"""
