"""Start-up costs of llmx in a fresh process: import, registry assembly, client construction.

``python -m bench.drivers.registry_probe '<spec json>'`` prints one JSON line:

``import_s``
    ``import llmx``.
``registry_s``
    ``Registry()``, ``assemble()`` and ``plugins()`` (entry-point discovery: this is
    what grows with the number of installed plugins).
``client_s``
    ``llmx.Client(config)`` for the bench config (loads the openai plugin).
``load_all_s``
    ``registry.load_all()`` as ``llmx plugins`` does (imports every installed plugin).
``plugins``
    how many plugins discovery found.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    """Measure and print (see the module docstring)."""
    spec = json.loads(sys.argv[1])
    perf = time.perf_counter
    t0 = perf()
    import llmx

    t1 = perf()
    registry = llmx.Registry()
    registry.assemble()
    found = registry.plugins()
    t2 = perf()
    client = llmx.Client(spec["config"])
    t3 = perf()
    del client
    everything = llmx.Registry().load_all()
    t4 = perf()
    failed = [p.name for p in everything if p.status not in ("loaded", "available", "disabled")]
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "registry_s": t2 - t1,
                "client_s": t3 - t2,
                "load_all_s": t4 - t3,
                "plugins": len(found),
                "failed": failed,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
