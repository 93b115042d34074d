"""Cache hit latency, per backend: the slot that measures itself once caches land.

``python -m bench.drivers.cache_probe '<spec json>'`` loads every installed plugin,
asks the registry for its cache backends, and for each backend the spec names:

``component``
    builds the backend the way the registry describes (``factory(settings)``), stores
    one value and times ``await cache.get(key)`` hits (median, p99, µs).
``client``
    runs ``llmx.Client`` with ``[cache] backend = NAME``: one request (a miss), 50
    untimed hits, then ``hits`` identical requests, each timed in this process
    (``perf_counter`` around ``await client.complete(...)``: the median and p99 are
    in-process figures, no process start or IPC in them); the fake server's counter
    must not move, or the pipeline is not using the cache yet (reported as such, not
    as a hit latency).

A backend the registry does not list is reported as ``"not available yet"``. Output:
one JSON line ``{"registered": [...], "backends": {name: {...}}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from typing import Any

from bench.drivers._harness import summary
from bench.wire import PROMPT, REPLY_TEXT


def _server_requests(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/__stats", timeout=5) as resp:
        return int(json.loads(resp.read())["requests"])


def _us(values: list[float]) -> dict[str, float]:
    return {k: (v * 1e6 if k != "n" else v) for k, v in summary(values).items()}


async def _component(
    registry: Any, name: str, options: dict[str, Any], hits: int
) -> dict[str, Any]:
    from llmx._config import structure_settings

    reg = registry.get("cache", name)
    settings = structure_settings(reg.settings, options, "$.cache")
    try:
        cache = reg.factory(settings)
    except TypeError:
        cache = reg.factory()
    key = "bench:" + "0" * 64
    await cache.set(key, REPLY_TEXT.encode() * 8, ttl=600.0)
    perf = time.perf_counter
    for _ in range(min(100, hits)):
        await cache.get(key)
    times = []
    for _ in range(hits):
        t0 = perf()
        value = await cache.get(key)
        times.append(perf() - t0)
        if value is None:
            return {"status": "error", "reason": "get() missed a key that was just set"}
    closer = getattr(cache, "aclose", None) or getattr(cache, "close", None)
    if closer is not None:
        result = closer()
        if asyncio.iscoroutine(result):
            await result
    return {"status": "ok", "get_us": _us(times)}


async def _client(
    spec: dict[str, Any], name: str, options: dict[str, Any], hits: int
) -> dict[str, Any]:
    import llmx

    base_url = spec["base_url"]
    config = dict(spec["config"])
    config["cache"] = {"backend": name, **options}
    before = _server_requests(base_url)
    perf = time.perf_counter
    async with llmx.Client(config) as client:
        reply = await client.complete(model=spec["model"], prompt=PROMPT)
        if reply.text != REPLY_TEXT:
            return {"status": "error", "reason": f"wrong answer {reply.text!r:.80}"}
        for _ in range(min(50, hits)):  # warm-up: the first hits open what hits use
            await client.complete(model=spec["model"], prompt=PROMPT)
        times = []
        for _ in range(hits):
            t0 = perf()
            reply = await client.complete(model=spec["model"], prompt=PROMPT)
            times.append(perf() - t0)
            if reply.text != REPLY_TEXT:
                return {"status": "error", "reason": f"wrong cached answer {reply.text!r:.80}"}
    sent = _server_requests(base_url) - before
    if sent != 1:
        return {
            "status": "not used",
            "reason": f"the server saw {sent} requests for 1 miss + {hits} hits: the pipeline "
            "does not consult the cache yet",
        }
    return {"status": "ok", "complete_us": _us(times)}


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    import llmx

    registry = llmx.Registry()
    registry.load_all()
    registered = registry.names("cache")
    out: dict[str, Any] = {"registered": registered, "backends": {}}
    for name, options in spec["backends"].items():
        entry: dict[str, Any] = {}
        if name not in registered:
            entry["status"] = "not available yet"
            entry["reason"] = f"no installed plugin registers a cache backend named {name!r}"
            out["backends"][name] = entry
            continue
        if options is None:
            entry = {"status": "skipped", "reason": spec.get("why", {}).get(name, "no server")}
            out["backends"][name] = entry
            continue
        try:
            entry["component"] = await _component(registry, name, options, spec["hits"])
        except Exception as err:
            entry["component"] = {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        try:
            entry["client"] = await _client(spec, name, options, spec["hits"])
        except Exception as err:
            entry["client"] = {"status": "error", "reason": f"{type(err).__name__}: {err}"}
        entry["status"] = "measured"
        out["backends"][name] = entry
    return out


def main() -> None:
    """Measure and print (see the module docstring)."""
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(_run(spec))), flush=True)


if __name__ == "__main__":
    main()
