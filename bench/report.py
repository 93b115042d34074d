"""From raw runs to the summary (medians over rounds, ratios per round) and markdown."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

X = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"
MiB = 1024 * 1024

Stat = dict[str, float]


def stat(values: Iterable[float | None]) -> Stat | None:
    """Median, min and max of the values that exist (None if there are none)."""
    vals = [v for v in values if v is not None and v == v]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


# -- extracting per-round values ---------------------------------------------------------

Extract = Callable[[dict[str, Any]], float]

_METRICS: dict[str, tuple[str, Extract]] = {
    # name: (mode, value from a run's result)
    "seq_us": ("seq", lambda r: r["latency"]["median"] * 1e6),
    "seq_p99_us": ("seq", lambda r: r["latency"]["p99"] * 1e6),
    "cpu_us": ("seq", lambda r: r["cpu_per_request"] * 1e6),
    "tput_rps": ("tput", lambda r: r["rps"]),
    "tput_cpu_us": ("tput", lambda r: r["cpu_per_request"] * 1e6),
    "peak_rss_mb": ("tput", lambda r: r["peak_rss"] / MiB),
    "ttfc_us": ("stream", lambda r: r["ttfc"]["median"] * 1e6),
    "ttlc_us": ("stream", lambda r: r["ttlc"]["median"] * 1e6),
    "stream_cpu_us": ("stream", lambda r: r["cpu_per_stream"] * 1e6),
}

# Ratios against raw aiohttp in the same round ("ratio"), or differences ("delta").
_RATIOS = {
    "seq_us": "seq",
    "cpu_us": "cpu",
    "tput_rps": "tput",
    "ttlc_us": "ttlc",
    "ttfc_us": "ttfc",
    "cold_ms": "cold",
    "tput_cpu_us": "tput_cpu",
}
_DELTAS = {"seq_us": "seq_us", "ttfc_us": "ttfc_us", "peak_rss_mb": "rss_mb", "cpu_us": "cpu_us"}


def _per_round(results: dict[str, Any]) -> dict[str, dict[str, dict[int, float]]]:
    """``{client: {metric: {round: value}}}`` from the successful runs."""
    tput_c = results["meta"]["plan"]["tput"]["concurrency"]
    out: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    colds: dict[tuple[str, int], list[float]] = defaultdict(list)
    for run in results["runs"]:
        if run["status"] != "ok" or run["mode"] == "memory":
            continue
        res, key, rnd = run["result"], run["client"], run["round"]
        colds[(key, rnd)].append(res["cold_start"] * 1e3)
        if run["mode"] == "tput" and run.get("concurrency") != tput_c:
            continue
        for metric, (mode, fn) in _METRICS.items():
            if mode == run["mode"]:
                out[key][metric][rnd] = fn(res)
    for (key, rnd), values in colds.items():
        out[key]["cold_ms"][rnd] = statistics.median(values)
    return out


def _floor_key(results: dict[str, Any], key: str) -> str:
    fmt = results["clients"].get(key, {}).get("format", "openai")
    return "raw" if fmt == "openai" else f"raw-{fmt}"


def _chunked_floor_key(results: dict[str, Any], key: str) -> str:
    fmt = results["clients"].get(key, {}).get("format", "openai")
    return "raw-chunked" if fmt == "openai" else f"raw-{fmt}-chunked"


# Streams against the floor that reads the socket in chunks as llmx does (iter_any()
# plus an incremental line split) instead of aiohttp's line-by-line iteration.
_CHUNKED_RATIOS = {"ttlc_us": "ttlc_chunked", "ttfc_us": "ttfc_chunked"}
_CHUNKED_DELTAS = {"ttfc_us": "ttfc_chunked_us", "ttlc_us": "ttlc_chunked_us"}


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The summary: per-client stats, ratios, imports, sweep, memory, plugins, goals."""
    per_round = _per_round(results)
    clients: dict[str, Any] = {}
    for key in results["clients"]:
        mine = per_round.get(key, {})
        floor = per_round.get(_floor_key(results, key), {})
        entry: dict[str, Any] = {m: stat(v.values()) for m, v in mine.items()}
        ratios, deltas = {}, {}
        for metric, name in _RATIOS.items():
            pairs = [(v, floor.get(metric, {}).get(r)) for r, v in mine.get(metric, {}).items()]
            ratios[name] = stat(v / f if f else None for v, f in pairs)
        for metric, name in _DELTAS.items():
            pairs = [(v, floor.get(metric, {}).get(r)) for r, v in mine.get(metric, {}).items()]
            deltas[name] = stat(v - f if f is not None else None for v, f in pairs)
        chunked = per_round.get(_chunked_floor_key(results, key), {})
        for metric, name in _CHUNKED_RATIOS.items():
            pairs = [(v, chunked.get(metric, {}).get(r)) for r, v in mine.get(metric, {}).items()]
            ratios[name] = stat(v / f if f else None for v, f in pairs)
        for metric, name in _CHUNKED_DELTAS.items():
            pairs = [(v, chunked.get(metric, {}).get(r)) for r, v in mine.get(metric, {}).items()]
            deltas[name] = stat(v - f if f is not None else None for v, f in pairs)
        entry["ratio"] = ratios
        entry["delta"] = deltas
        clients[key] = entry

    imports: dict[str, Any] = {}
    by_module: dict[str, list[float]] = defaultdict(list)
    for item in results["imports"]:
        if "import_s" in item:
            by_module[item["module"]].append(item["import_s"] * 1e3)
    for module, values in by_module.items():
        imports[module] = {
            "median_ms": statistics.median(values),
            "best_ms": min(values),
            "max_ms": max(values),
            "n": len(values),
        }

    summary = {
        "clients": clients,
        "imports": imports,
        "sweep": _sweep(results),
        "memory": _memory(results),
        "plugins": _plugins(results.get("plugins", {})),
        "cache": results.get("cache", {}),
        "correctness": _correctness(results),
    }
    summary["goals"] = goals(results, summary)
    return summary


def _sweep(results: dict[str, Any]) -> dict[str, Any]:
    rps: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for run in results["runs"]:
        if run["status"] == "ok" and run["mode"] == "tput":
            rps[run["client"]][run["concurrency"]][run["round"]] = run["result"]["rps"]
    levels = results["meta"]["plan"]["sweep_levels"]
    out: dict[str, Any] = {}
    raw = rps.get("raw", {})
    for key, by_level in rps.items():
        if key != "raw" and not key.startswith("llmx"):
            continue
        if len([lv for lv in levels if lv in by_level]) < 2:
            continue
        row = {}
        for level in levels:
            mine = by_level.get(level, {})
            row[str(level)] = {
                "rps": stat(mine.values()),
                "ratio": stat(
                    v / raw[level][r] if raw.get(level, {}).get(r) else None
                    for r, v in mine.items()
                ),
            }
        out[key] = row
    return out


def _memory(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for run in results["runs"]:
        if run["mode"] != "memory":
            continue
        if run["status"] != "ok":
            out[run["client"]] = {"error": run.get("reason", run["status"])}
            continue
        points = run["result"]["points"]
        base_n, base = points[1] if len(points) > 2 else points[0]
        last_n, last = points[-1]
        out[run["client"]] = {
            "points": [(n, round(b / MiB, 2)) for n, b in points],
            "from_requests": base_n,
            "to_requests": last_n,
            "growth_mb": (last - base) / MiB,
            "peak_rss_mb": run["result"]["peak_rss"] / MiB,
        }
    return out


def _plugins(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count, samples in raw.items():
        row: dict[str, Any] = {}
        for name in ("import_s", "registry_s", "client_s", "load_all_s", "help_s"):
            values = [s[name] * 1e3 for s in samples if name in s]
            if values:
                row[name.replace("_s", "_ms")] = {
                    "median": statistics.median(values),
                    "best": min(values),
                }
        row["plugins_found"] = sorted({s.get("plugins") for s in samples if "plugins" in s})
        errors = [
            s.get("error") or s.get("help_error")
            for s in samples
            if "error" in s or "help_error" in s
        ]
        if errors:
            row["errors"] = errors[:3]
        out[count] = row
    return out


def _correctness(results: dict[str, Any]) -> dict[str, Any]:
    runs = results["runs"]
    ok = [r for r in runs if r["status"] == "ok"]
    requests = sum(r["result"]["sent"] for r in ok)
    bad = [
        {k: r.get(k) for k in ("round", "client", "mode", "concurrency", "status", "reason")}
        for r in runs
        if r["status"] not in ("ok", "skip")
    ]
    return {"runs": len(runs), "ok": len(ok), "requests_checked": requests, "problems": bad}


# -- goals -------------------------------------------------------------------------------


def _goal(
    name: str, target: str, value: float | None, shown: str, met: bool | None, note: str = ""
) -> dict[str, Any]:
    return {
        "goal": name,
        "target": target,
        "value": value,
        "shown": shown,
        "met": met,
        "note": note,
    }


def _med(s: Stat | None) -> float | None:
    return None if s is None else s["median"]


def _range(s: Stat | None, fmt: str) -> str:
    if s is None:
        return "n/a"
    text = format(s["median"], fmt)
    if s.get("n", 1) > 1:
        text += f" ({format(s['min'], fmt)}{DASH}{format(s['max'], fmt)})"
    return text


def client_goals(summary: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The per-request goals for llmx client ``key`` (issue 12's targets: sequential
    ≤ 1.20x, CPU ≤ 1.25x, throughput @64 ≥ 0.80x, a 50-chunk stream ≤ 1.10x the
    chunked-read floor, RSS growth ≤ raw's + 1 MB; the others from the first bench)."""
    c = summary["clients"].get(key, {})
    r, d = c.get("ratio", {}), c.get("delta", {})
    mem = summary["memory"].get(key, {})
    raw_mem = summary["memory"].get("raw", {})

    def check(s: Stat | None, ok: Callable[[float], bool]) -> bool | None:
        v = _med(s)
        return None if v is None else ok(v)

    out = [
        _goal(
            "sequential latency",
            f"≤ 1.20{X} raw",
            _med(r.get("seq")),
            _range(r.get("seq"), ".2f") + X,
            check(r.get("seq"), lambda v: v <= 1.20),
        ),
        _goal(
            "added per request",
            "≤ ~50 µs",
            _med(d.get("seq_us")),
            _range(d.get("seq_us"), "+.0f") + " µs",
            check(d.get("seq_us"), lambda v: v <= 50),
        ),
        _goal(
            "CPU per request",
            f"≤ 1.25{X} raw",
            _med(r.get("cpu")),
            _range(r.get("cpu"), ".2f") + X,
            check(r.get("cpu"), lambda v: v <= 1.25),
        ),
        _goal(
            "throughput @64",
            f"≥ 0.80{X} raw",
            _med(r.get("tput")),
            _range(r.get("tput"), ".2f") + X,
            check(r.get("tput"), lambda v: v >= 0.80),
        ),
        _goal(
            "stream, time to last chunk",
            f"≤ 1.25{X} raw",
            _med(r.get("ttlc")),
            _range(r.get("ttlc"), ".2f") + X,
            check(r.get("ttlc"), lambda v: v <= 1.25),
        ),
        _goal(
            "stream, time to last chunk, vs the chunked-read floor",
            f"≤ 1.10{X} raw chunked",
            _med(r.get("ttlc_chunked")),
            _range(r.get("ttlc_chunked"), ".2f") + X,
            check(r.get("ttlc_chunked"), lambda v: v <= 1.10),
        ),
        _goal(
            "stream, time to first chunk",
            "≤ raw + 100 µs",
            _med(d.get("ttfc_us")),
            _range(d.get("ttfc_us"), "+.0f") + " µs",
            check(d.get("ttfc_us"), lambda v: v <= 100),
        ),
        _goal(
            "cold start to first reply",
            f"≤ 1.3{X} raw",
            _med(r.get("cold")),
            _range(r.get("cold"), ".2f") + X,
            check(r.get("cold"), lambda v: v <= 1.3),
        ),
        _goal(
            "peak RSS @64",
            "≤ raw + 15 MB",
            _med(d.get("rss_mb")),
            _range(d.get("rss_mb"), "+.1f") + " MB",
            check(d.get("rss_mb"), lambda v: v <= 15),
        ),
    ]
    if "growth_mb" in mem:
        allowed = 1.0 + max(0.0, raw_mem.get("growth_mb", 0.0))
        out.append(
            _goal(
                f"RSS growth {mem['from_requests']:,} → {mem['to_requests']:,} requests",
                "none (≤ raw's growth + 1 MB)",
                mem["growth_mb"],
                f"{mem['growth_mb']:+.2f} MB (raw {raw_mem.get('growth_mb', float('nan')):+.2f} MB)",
                mem["growth_mb"] <= allowed,
            )
        )
    else:
        shown = "error" if "error" in mem else "not run for this config"
        out.append(_goal("RSS growth", "none", None, shown, None, mem.get("error", "")))
    return out


def global_goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Goals that do not depend on the llmx config: import, --help, cache hits."""
    out = []
    imp = summary["imports"].get("llmx")
    if imp:
        out.append(
            _goal(
                "import llmx",
                "≤ 50 ms",
                imp["median_ms"],
                f"{imp['median_ms']:.1f} ms (best {imp['best_ms']:.1f})",
                imp["median_ms"] <= 50,
            )
        )
    plugins = summary["plugins"]
    top = max(plugins, key=int) if plugins else None
    if top is not None and "help_ms" in plugins[top]:
        h = plugins[top]["help_ms"]
        out.append(
            _goal(
                f"llmx --help with {top} plugins",
                "≤ 150 ms",
                h["median"],
                f"{h['median']:.0f} ms (best {h['best']:.0f})",
                h["median"] <= 150,
            )
        )
    targets = {"memory": 20.0, "sqlite": 150.0, "redis": 1000.0}
    backends = summary.get("cache", {}).get("backends", {})
    for name, limit in targets.items():
        b = backends.get(name, {})
        client = b.get("client", {}) if isinstance(b, dict) else {}
        if client.get("status") == "ok":
            v = client["complete_us"]["median"]
            out.append(
                _goal(f"cache hit ({name})", f"≤ {limit:g} µs", v, f"{v:.1f} µs", v <= limit)
            )
        else:
            b = b if isinstance(b, dict) else {}
            if b.get("status") == "measured":
                shown = f"client-level hit not measurable ({client.get('status', 'error')})"
                detail = client.get("reason", "")
            else:
                shown = b.get("status", "not available yet")
                detail = b.get("reason", "")
            out.append(_goal(f"cache hit ({name})", f"≤ {limit:g} µs", None, shown, None, detail))
    return out


def goals(results: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Goals per llmx config (the pipeline-on one is the verdict) and global goals."""
    per = {
        key: client_goals(summary, key)
        for key, info in results["clients"].items()
        if info["family"] == "llmx" and key in summary["clients"]
    }
    return {"per_config": per, "global": global_goals(summary)}


# -- markdown ----------------------------------------------------------------------------


def _fmt_us(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def _ratio_cell(s: Stat | None, absolute: str) -> str:
    if s is None:
        return "n/a"
    text = f"{s['median']:.2f}"
    if s["n"] > 1 and s["min"] != s["max"]:
        text += f" ({s['min']:.2f}{DASH}{s['max']:.2f})"
    return f"{text} · {absolute}"


def _met(m: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "n/a"}[m]


def markdown(results: dict[str, Any]) -> str:
    """The human report: the issue's table with llmx rows, goals, then details."""
    s = results["summary"]
    meta = results["meta"]
    plan = meta["plan"]
    clients = results["clients"]
    lines = [
        f"# llmx bench: {plan['name']} run, {meta['started']}",
        "",
        f"{meta['cpu']} ({meta['cpus']} CPUs), Python {meta['python']}, git {meta['git']}; "
        f"server on CPU {results['noise']['server_cpu']}, clients on CPU {results['noise']['client_cpu']} "
        f"({meta['pinning']}{', niceness ' + str(meta['nice']) if meta.get('nice') else ''}); "
        f"{plan['rounds']} interleaved round(s), fresh process per metric; "
        f"medians over rounds with (min{DASH}max); ratios against raw aiohttp in the same round. "
        f"Took {meta['duration_s']:.0f} s"
        + (
            f" ({meta['waited_for_quiet_s']:.0f} s of it waiting for other processes to quieten)."
            if meta.get("waited_for_quiet_s")
            else "."
        ),
        "",
    ]
    if meta.get("peer_versions"):
        pv = ", ".join(f"{k} {v}" for k, v in meta["peer_versions"].items())
        lines += [f"Peers ({meta.get('peers_venv')}): {pv}.", ""]
    lines += [
        f"| client | sequential {X}raw | throughput @64 {X}raw | 50-chunk stream {X}raw "
        f"| 50-chunk stream {X}raw chunked reads | import | peak RSS @64 |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, info in clients.items():
        c = s["clients"].get(key, {})
        if not c.get("seq_us") and not c.get("tput_rps") and not c.get("ttlc_us"):
            continue
        imp = s["imports"].get(info["import"])
        rss = c.get("peak_rss_mb")
        label = info["label"] + (" (the floor)" if key == "raw" else "")
        lines.append(
            "| "
            + " | ".join(
                [
                    label,
                    _ratio_cell(c["ratio"].get("seq"), _fmt_us(_med(c.get("seq_us")))),
                    _ratio_cell(
                        c["ratio"].get("tput"), f"{_med(c.get('tput_rps')) or 0:,.0f} req/s"
                    ),
                    _ratio_cell(c["ratio"].get("ttlc"), _fmt_us(_med(c.get("ttlc_us")))),
                    _ratio_cell(c["ratio"].get("ttlc_chunked"), _fmt_us(_med(c.get("ttlc_us")))),
                    f"{imp['median_ms']:.0f} ms" if imp else "n/a",
                    f"{rss['median']:.0f} MB" if rss else "n/a",
                ]
            )
            + " |"
        )
    lines.append("")

    goal_sets = s["goals"]["per_config"]
    keys = sorted(goal_sets, key=lambda k: (not clients[k].get("pipeline"), k))
    if keys:
        lines += ["## Goals", ""]
        header = "| goal | target | " + "".join(f"{clients[k]['label']} | verdict | " for k in keys)
        lines += [header.rstrip(), "|---|---|" + "---|---|" * len(keys)]
        for i, g in enumerate(goal_sets[keys[0]]):
            cells = []
            for k in keys:
                gk = goal_sets[k][i]
                cells += [gk["shown"], _met(gk["met"])]
            lines.append(f"| {g['goal']} | {g['target']} | " + " | ".join(cells) + " |")
        for g in s["goals"]["global"]:
            value = g["shown"] + (f" ({g['note']})" if g["note"] else "")
            cells = [value, _met(g["met"])] + ["", ""] * (len(keys) - 1)
            lines.append(f"| {g['goal']} | {g['target']} | " + " | ".join(cells) + " |")
        lines.append("")

    lines += [
        "## Details",
        "",
        f"Per request (sequential) and per stream; medians over rounds (min{DASH}max).",
        "",
    ]
    lines += [
        "| client | latency median | p99 | CPU/request | CPU/request @64 | cold start | TTFC | TTLC (50 chunks) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, info in clients.items():
        c = s["clients"].get(key, {})
        if not c:
            continue

        def cell(metric: str, fmt: Callable[[float], str], c: dict[str, Any] = c) -> str:
            st = c.get(metric)
            if not st:
                return "n/a"
            text = fmt(st["median"])
            return text + (f" ({fmt(st['min'])}{DASH}{fmt(st['max'])})" if st["n"] > 1 else "")

        lines.append(
            f"| {info['label']} | {cell('seq_us', _fmt_us)} | {cell('seq_p99_us', _fmt_us)} | "
            f"{cell('cpu_us', _fmt_us)} | {cell('tput_cpu_us', _fmt_us)} | {cell('cold_ms', lambda v: f'{v:.0f} ms')} | "
            f"{cell('ttfc_us', _fmt_us)} | {cell('ttlc_us', _fmt_us)} |"
        )
    lines.append("")

    if s["imports"]:
        lines += [
            "Import time (fresh process, `import X` alone):",
            "",
            "| module | median | best | max | n |",
            "|---|---|---|---|---|",
        ]
        for module, imp in s["imports"].items():
            lines.append(
                f"| `{module}` | {imp['median_ms']:.1f} ms | {imp['best_ms']:.1f} ms | {imp['max_ms']:.1f} ms | {imp['n']} |"
            )
        lines.append("")

    if s["sweep"]:
        levels = plan["sweep_levels"]
        lines += [
            f"Throughput sweep (req/s, {X}raw):",
            "",
            "| client | " + " | ".join(f"@{lv}" for lv in levels) + " |",
            "|---|" + "---|" * len(levels),
        ]
        for key, row in s["sweep"].items():
            cells = []
            for lv in levels:
                entry = row.get(str(lv), {})
                rps, ratio = entry.get("rps"), entry.get("ratio")
                text = f"{rps['median']:,.0f}" if rps else "n/a"
                if ratio and key != "raw":
                    text += f" ({ratio['median']:.2f}{X})"
                cells.append(text)
            lines.append(f"| {clients[key]['label']} | " + " | ".join(cells) + " |")
        lines.append("")

    if s["memory"]:
        lines += [
            "Memory growth (RSS after a GC, at concurrency 64):",
            "",
            "| client | RSS at checkpoints (requests: MB) | growth | peak |",
            "|---|---|---|---|",
        ]
        for key, m in s["memory"].items():
            if "error" in m:
                lines.append(f"| {clients[key]['label']} | {m['error']} | | |")
                continue
            pts = ", ".join(f"{n // 1000}k: {mb:.1f}" for n, mb in m["points"][1:])
            lines.append(
                f"| {clients[key]['label']} | {pts} | {m['growth_mb']:+.2f} MB ({m['from_requests']:,} → {m['to_requests']:,}) | {m['peak_rss_mb']:.1f} MB |"
            )
        lines.append("")

    if s["plugins"]:
        lines += [
            "Installed dummy plugins (fresh process each; median, best):",
            "",
            "| plugins installed | found | `import llmx` | registry assemble + list | `Client(config)` | load all (`llmx plugins`) | `llmx --help` (process) |",
            "|---|---|---|---|---|---|---|",
        ]
        for count, row in s["plugins"].items():

            def pc(name: str, row: dict[str, Any] = row) -> str:
                v = row.get(name)
                return f"{v['median']:.1f} ms ({v['best']:.1f})" if v else "n/a"

            lines.append(
                f"| {count} | {', '.join(map(str, row.get('plugins_found', [])))} | {pc('import_ms')} | {pc('registry_ms')} | "
                f"{pc('client_ms')} | {pc('load_all_ms')} | {pc('help_ms')} |"
            )
        lines.append("")

    cache = s.get("cache") or {}
    if cache:
        lines += [
            f"Cache hits (registered backends: {', '.join(cache.get('registered', [])) or 'none'}):",
            "",
        ]
        if "error" in cache:
            lines.append(f"- cache probe failed: {cache['error']}")
        for name, b in cache.get("backends", {}).items():
            if b.get("status") != "measured":
                lines.append(f"- {name}: {b.get('status')}: {b.get('reason', '')}")
                continue
            comp, cl = b.get("component", {}), b.get("client", {})
            comp_text = (
                f"get() median {comp['get_us']['median']:.1f} µs, p99 {comp['get_us']['p99']:.1f} µs"
                if comp.get("status") == "ok"
                else f"component: {comp.get('status')}: {comp.get('reason', '')}"
            )
            cl_text = (
                f"client.complete() hit median {cl['complete_us']['median']:.1f} µs, p99 {cl['complete_us']['p99']:.1f} µs"
                if cl.get("status") == "ok"
                else f"client: {cl.get('status')}: {cl.get('reason', '')}"
            )
            lines.append(f"- {name}: {comp_text}; {cl_text}")
        lines.append("")

    corr = s["correctness"]
    lines += [
        "## Correctness and noise",
        "",
        f"- {corr['ok']}/{corr['runs']} driver runs passed; {corr['requests_checked']:,} answers checked against the "
        "expected text (streams reassembled); every passing run's request count matched the server's counter.",
    ]
    for p in corr["problems"]:
        lines.append(
            f"- problem: {p['client']} {p['mode']} round {p['round']}: {p['status']}: {p.get('reason')}"
        )
    for key, why in results.get("skipped", {}).items():
        lines.append(f"- skipped {key}: {why}")
    for note in results.get("notes", []):
        lines.append(f"- note: {note}")
    noise = results["noise"]
    cpu = noise.get("cpu", {})
    total = cpu.get("cpu", {})
    per_cpu = "; ".join(f"{name} busy {v['busy']:.0f}%" for name, v in cpu.items() if name != "cpu")
    lines.append(
        f"- load average before {_loads(noise['loadavg_before'])}, after {_loads(noise['loadavg_after'])}; "
        f"during the run iowait {total.get('iowait', 0):.2f}%, steal {total.get('steal', 0):.2f}%; {per_cpu}."
    )
    foreign = noise.get("foreign")
    if foreign:
        per_round = ", ".join(
            f"round {n['round']}: {n['foreign_cores']:.2f}" for n in noise.get("rounds", [])
        )
        lines.append(
            f"- CPU taken by other processes (machine busy time minus the bench's own processes): "
            f"{foreign['foreign_cores']:.2f} cores on average over the run"
            + (f" ({per_round})" if per_round else "")
            + "; above ~0.1 the numbers are disturbed."
        )
    lines.append("")
    return "\n".join(lines)


def _loads(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "n/a"
