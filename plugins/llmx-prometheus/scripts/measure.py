"""The llmx-prometheus listener's own cost, outside pytest: its hooks for one request
(``llmx_request_start``, ``llmx_attempt_end`` with usage, ``llmx_request_end``), the
event objects included, in CPU microseconds (``timeit`` with ``time.process_time``, the
best of five runs).

    .venv/bin/python plugins/llmx-prometheus/scripts/measure.py [--requests 20000]

What a whole request costs with the plugin on is ``python -m bench icount --configs
llmx,llmx-prometheus`` (bench/README.md).
"""

from __future__ import annotations

import argparse
import itertools
import time
import timeit

from prometheus_client import CollectorRegistry

from llmx import Request, Response, Usage
from llmx.plugin import AttemptEnd, RequestEnd, RequestStart
from llmx_prometheus import PrometheusListener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    listener = PrometheusListener(registry=CollectorRegistry())
    request = Request("bench/gpt-4o-mini", "Hi")
    usage = Usage(10, 5)
    response = Response("Hello", model="gpt-4o-mini", provider="bench", usage=usage, cost=1e-5)
    ids = (f"r-{i}" for i in itertools.count())

    def one() -> None:
        rid = next(ids)
        listener.llmx_request_start(RequestStart(rid, request, False, 0.0))
        listener.llmx_attempt_end(AttemptEnd(rid, "bench", "gpt-4o-mini", 1, 0.0, 0.01, usage))
        listener.llmx_request_end(RequestEnd(rid, response, 0.02))

    n = args.requests
    best = min(timeit.repeat(one, number=n, repeat=5, timer=time.process_time))
    print(f"listener hooks, one request (3 events, objects included): {best / n * 1e6:.1f} us CPU")


if __name__ == "__main__":
    main()
