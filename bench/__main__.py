"""``python -m bench``: the whole bench (``--quick`` for the smoke run), ``profile``, ``server``.

::

    python -m bench                 # full run, < 10 min: results/<timestamp>.json + latest.md
    python -m bench --quick         # smoke run for CI, < 60 s, no peers
    python -m bench profile         # cProfile (and pyinstrument) of llmx's hot paths
    python -m bench icount          # instructions per request under callgrind (noise-free)
    python -m bench server --port 8000   # the fake server alone, for manual poking
    python -m bench report results/X.json  # re-render latest.md from a saved run
"""

from __future__ import annotations

import argparse
import sys


def _run(argv: list[str]) -> None:
    from bench import runner

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, small counts, no peers (< 60 s)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 3 full, 1 quick)")
    parser.add_argument(
        "--memory-requests", type=int, help="requests in the memory-growth phase (full: 100000)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip the openai SDK and LiteLLM")
    parser.add_argument(
        "--only", help="comma-separated client keys to run (raw always runs), e.g. llmx,openai"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated phases to skip: memory,plugins,cache"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each round, wait up to S seconds for other processes to leave the CPUs idle",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="run the server and the measured processes at niceness N (e.g. -10 as root, "
        "to shield them from other load on a shared machine)",
    )
    args = parser.parse_args(argv)
    plan = runner.QUICK if args.quick else runner.FULL
    plan = runner.with_overrides(
        plan,
        rounds=args.rounds,
        memory_requests=args.memory_requests,
        peers=False if args.no_peers else None,
    )
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    runner.run(
        plan,
        only=only,
        wait_quiet_s=args.wait_quiet,
        nice=args.nice,
        memory="memory" not in skip,
        plugins="plugins" not in skip,
        cache="cache" not in skip,
    )


def _report(argv: list[str]) -> None:
    """Re-summarize a saved run and rewrite ``bench/results/latest.md`` from it."""
    import json
    from pathlib import Path

    from bench import report
    from bench.system import RESULTS

    parser = argparse.ArgumentParser(prog="python -m bench report", description=_report.__doc__)
    parser.add_argument("path", type=Path, help="a bench/results/*.json file")
    args = parser.parse_args(argv)
    results = json.loads(args.path.read_text())
    results["summary"] = report.summarize(results)
    markdown = report.markdown(results)
    (RESULTS / "latest.md").write_text(markdown)
    print(markdown)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the sub-command (default: run)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "server":
        from bench.server import main as server_main

        server_main(args[1:])
    elif args and args[0] == "report":
        _report(args[1:])
    elif args and args[0] == "profile":
        from bench.profiling import main as profile_main

        profile_main(args[1:])
    elif args and args[0] == "icount":
        from bench.icount import main as icount_main

        icount_main(args[1:])
    else:
        _run(args[1:] if args and args[0] == "run" else args)


if __name__ == "__main__":
    main()
