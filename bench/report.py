"""The run's results as tables (plain text for the terminal, Markdown for docs/benchmarks.md) and targets.

Absolute figures sit next to the two ratios that matter: gateway/direct (what the gateway costs on top of the
upstream) and gateway/relay (how close it is to the least any Python relay on this stack could do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[str]

#: Issue 6's targets (one worker, this machine class).
TARGETS = {
    "added_p50_ms": 1.0, "added_p99_ms": 3.0, "chat_rps": 1500.0, "chat_vs_relay": 0.70,
    "native_vs_relay": 0.85, "added_ttft_ms": 2.0, "rss_mb": 200.0, "soak_s": 300.0,
}


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def comparison_rows(results: dict[str, Any]) -> list[Row]:
    """Scenario rows: direct, relay, gateway, gateway−direct, gateway/direct, gateway/relay."""
    rows: list[Row] = []

    def add(label: str, section: str, scenario: str, metric: str, *, added: bool, digits: int = 2) -> None:
        values = [_get(results, section, scenario, t, metric) for t in ("direct", "relay", "gateway")]
        if all(v is None for v in values):
            return
        direct, relay, gateway = values
        diff = _num(gateway - direct, digits) if added and None not in (gateway, direct) else ""
        rows.append([label, *(_num(v, digits) for v in values), diff, _ratio(gateway, direct),
                     _ratio(gateway, relay)])

    add("chat c=1: latency p50 (ms)", "nonstream", "chat_c1", "p50_ms", added=True, digits=3)
    add("chat c=1: latency p99 (ms)", "nonstream", "chat_c1", "p99_ms", added=True, digits=3)
    add("chat c=1: server CPU per request (µs)", "nonstream", "chat_c1", "cpu_us_per_req", added=True, digits=0)
    add("chat c=64: requests/s", "nonstream", "chat_c64", "rps", added=False)
    add("chat c=64: latency p99 (ms)", "nonstream", "chat_c64", "p99_ms", added=True)
    add("chat c=64: server CPU per request (µs)", "nonstream", "chat_c64", "cpu_us_per_req", added=True, digits=0)
    add("native c=64: requests/s", "nonstream", "native_c64", "rps", added=False)
    add("native c=64: server CPU per request (µs)", "nonstream", "native_c64", "cpu_us_per_req", added=True,
        digits=0)
    add("responses c=64: requests/s", "nonstream", "responses_c64", "rps", added=False)
    add("responses c=64: server CPU per request (µs)", "nonstream", "responses_c64", "cpu_us_per_req", added=True,
        digits=0)
    add("chat stream x32: TTFT p50 (ms)", "streams", "chat_c32", "ttft_p50_ms", added=True)
    add("chat stream x32: TTFT p99 (ms)", "streams", "chat_c32", "ttft_p99_ms", added=True)
    add("chat stream x32: total p50 (ms)", "streams", "chat_c32", "total_p50_ms", added=True)
    add("chat stream x32: streams/s", "streams", "chat_c32", "streams_per_s", added=False)
    add("chat stream x32: server CPU (% of a core)", "streams", "chat_c32", "server_cpu_pct", added=False, digits=1)
    add("chat stream x32: server CPU per stream (ms)", "streams", "chat_c32", "cpu_ms_per_stream", added=True,
        digits=3)
    add("native stream x32: TTFT p50 (ms)", "streams", "native_c32", "ttft_p50_ms", added=True)
    add("native stream x32: server CPU per stream (ms)", "streams", "native_c32", "cpu_ms_per_stream", added=True,
        digits=3)
    add("responses stream x32: TTFT p50 (ms)", "streams", "responses_c32", "ttft_p50_ms", added=True)
    add("responses stream x32: server CPU per stream (ms)", "streams", "responses_c32", "cpu_ms_per_stream",
        added=True, digits=3)
    return rows


COMPARISON_HEAD = ["scenario", "direct", "relay", "gateway", "gw − direct", "gw/direct", "gw/relay"]


def impl_rows(results: dict[str, Any]) -> list[Row]:
    impls = _get(results, "streams", "impls") or {}
    rows = []
    for name, r in impls.items():
        rows.append([name, _num(r["ttft_p50_ms"]), _num(r["ttft_p99_ms"]), _num(r["total_p50_ms"]),
                     _num(r["streams_per_s"], 1), _num(r["server_cpu_pct"], 1), _num(r["cpu_ms_per_stream"], 3),
                     str(r["errors"] + r["incomplete"])])
    return rows


IMPL_HEAD = ["stream response", "TTFT p50 ms", "TTFT p99 ms", "total p50 ms", "streams/s", "gateway CPU %",
             "CPU ms/stream", "errors"]


def memory_rows(results: dict[str, Any]) -> list[Row]:
    m = results.get("memory")
    if not m:
        return []
    return [[f"{m['reached']}/{m['streams']}", _num(m["ramp_s"]), _num(m["rss_before_mb"], 1),
             _num(m["rss_open_mb"], 1), _num(m["rss_peak_mb"], 1), _num(m["rss_after_mb"], 1),
             f"{m['soak_s']:g}", f"{m['drift_mb']:+.1f}", f"{m['slope_mb_per_min']:+.2f}",
             "yes" if m["flat"] else "NO", f"{m['fds_before']}/{m['fds_open']}/{m['fds_after']}",
             str(m["errors"] + m["incomplete"])]]


MEMORY_HEAD = ["streams open", "ramp s", "RSS before MB", "RSS open MB", "RSS peak MB", "RSS after MB",
               "soak s", "drift MB", "slope MB/min", "flat", "fds before/open/after", "errors"]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of the issue's targets with the measured figure and a plain met / not met."""
    out: list[dict[str, Any]] = []

    def add(name: str, goal: str, measured: float | None, fmt: Callable[[float], str],
            met: Callable[[float], bool]) -> None:
        out.append({"target": name, "goal": goal, "measured": None if measured is None else round(measured, 3),
                    "shown": "–" if measured is None else fmt(measured),
                    "met": None if measured is None else bool(met(measured))})

    ns = results.get("nonstream") or {}

    def diff(scenario: str, metric: str, section: dict[str, Any] = ns) -> float | None:
        g, d = _get(section, scenario, "gateway", metric), _get(section, scenario, "direct", metric)
        return None if g is None or d is None else g - d

    def ratio(scenario: str, metric: str, section: dict[str, Any] = ns) -> float | None:
        g, r = _get(section, scenario, "gateway", metric), _get(section, scenario, "relay", metric)
        return None if g is None or not r else g / r

    add("added latency p50, chat c=1", f"≤ {TARGETS['added_p50_ms']:g} ms", diff("chat_c1", "p50_ms"),
        lambda v: f"{v:.3f} ms", lambda v: v <= TARGETS["added_p50_ms"])
    add("added latency p99, chat c=1", f"≤ {TARGETS['added_p99_ms']:g} ms", diff("chat_c1", "p99_ms"),
        lambda v: f"{v:.3f} ms", lambda v: v <= TARGETS["added_p99_ms"])
    add("chat c=64 throughput", f"≥ {TARGETS['chat_rps']:,.0f} req/s", _get(ns, "chat_c64", "gateway", "rps"),
        lambda v: f"{v:,.0f} req/s", lambda v: v >= TARGETS["chat_rps"])
    add("chat c=64 vs relay", f"≥ {TARGETS['chat_vs_relay']:.0%}", ratio("chat_c64", "rps"),
        lambda v: f"{v:.0%}", lambda v: v >= TARGETS["chat_vs_relay"])
    add("native c=64 vs relay", f"≥ {TARGETS['native_vs_relay']:.0%}", ratio("native_c64", "rps"),
        lambda v: f"{v:.0%}", lambda v: v >= TARGETS["native_vs_relay"])
    st = results.get("streams") or {}
    add("added TTFT p50, 32 streams", f"≤ {TARGETS['added_ttft_ms']:g} ms", diff("chat_c32", "ttft_p50_ms", st),
        lambda v: f"{v:.2f} ms", lambda v: v <= TARGETS["added_ttft_ms"])
    mem = results.get("memory") or {}
    held = mem.get("reached") == mem.get("streams") and not mem.get("errors")
    add(f"RSS with {mem.get('streams', 1000)} open streams", f"≤ {TARGETS['rss_mb']:g} MB",
        mem.get("rss_peak_mb"), lambda v: f"{v:.1f} MB peak" + ("" if held else " (NOT all held)"),
        lambda v: held and v <= TARGETS["rss_mb"])
    soak = mem.get("soak_s")
    add("flat memory over the soak", f"flat over {TARGETS['soak_s']:g} s", mem.get("drift_mb"),
        lambda v: f"{v:+.1f} MB drift over {soak:g} s, {mem.get('slope_mb_per_min', 0):+.2f} MB/min",
        lambda v: bool(mem.get("flat")) and (soak or 0) >= TARGETS["soak_s"])
    return out


def target_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for t in results.get("targets") or []:
        verdict = "–" if t["met"] is None else ("met" if t["met"] else "NOT met")
        if t["target"] == "flat memory over the soak" and not t["met"] and (results.get("memory") or {}).get("flat"):
            verdict = "flat (soak shorter than 5 min)"
        rows.append([t["target"], t["goal"], t["shown"], verdict])
    return rows


TARGET_HEAD = ["target", "goal", "measured", "verdict"]


def profile_lines(results: dict[str, Any], top: int = 10) -> list[str]:
    lines = []
    for section, key, title in (("nonstream", "profile_chat_c64", "non-stream chat c=64"),
                                ("nonstream", "profile_native_c64", "native generateContent c=64"),
                                ("streams", "profile_chat_stream", "chat streams x32")):
        prof = _get(results, section, key)
        if not prof:
            continue
        if "error" in prof:
            lines.append(f"profile {title}: {prof['error']}")
            continue
        lines.append(f"profile {title}: gateway busy {prof['busy_pct_of_core']}% of a core "
                     f"({prof['samples']} samples, {prof['raw_file']})")
        lines.append("  by component (self, % of a core): " + ", ".join(
            f"{c['component']} {c['pct']}" for c in prof["by_component"][:top]))
        lines.append("  top self:")
        lines += [f"    {f['pct']:5.1f}  {f['function']}" for f in prof["top_self"][:top]]
        lines.append("  gateway functions, inclusive (a lower bound: a resumed coroutine shows only its own frames):")
        lines += [f"    {f['pct']:5.1f}  {f['function']}" for f in prof["top_app_inclusive"][:top]]
    return lines


def _text_table(head: Row, rows: list[Row]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)])


def _md_table(head: Row, rows: list[Row]) -> str:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *rows])


def noise(results: dict[str, Any]) -> list[str]:
    """Why a run's figures may not be trusted: CPU stolen by the hypervisor, other jobs, rounds that disagree."""
    reasons = []
    if (steal := results.get("steal_pct") or 0) > 5:
        reasons.append(f"the hypervisor stole {steal}% of the CPU")
    if (others := results.get("others_pct_of_core") or 0) > 20:
        reasons.append(f"other processes used {others}% of a core")
    for target in ("direct", "relay"):  # the two references should not move between rounds
        rounds = _get(results, "nonstream", "chat_c64", target, "rounds_rps") or []
        if len(rounds) > 1 and min(rounds) > 0 and max(rounds) / min(rounds) > 1.25:
            reasons.append(f"{target} c=64 rounds disagree ({' vs '.join(f'{r:,.0f}' for r in rounds)} req/s)")
    return reasons


def render(results: dict[str, Any], *, markdown: bool = False) -> str:
    table = _md_table if markdown else _text_table
    meta = results.get("meta", {})
    parts = []
    header = (f"{meta.get('cpu_model', '?')}, {meta.get('nproc', '?')} cores, {meta.get('mem_gb', '?')} GB, "
              f"Python {meta.get('python', '?')}; load average at start {meta.get('loadavg_at_start')}, "
              f"during the run: other processes {results.get('others_pct_of_core', '?')}% of a core, "
              f"CPU steal {results.get('steal_pct', '?')}%; "
              f"run took {results.get('elapsed_s', 0):.0f} s ({results.get('mode', '?')})")
    parts.append(header)
    if (reasons := noise(results)):
        parts.append("NOISY RUN, compare ratios with care: " + "; ".join(reasons) + ".")
    if (rows := comparison_rows(results)):
        parts.append(table(COMPARISON_HEAD, rows))
    if (rows := impl_rows(results)):
        parts.append(("**Stream response implementations** (gateway, chat streams x32)\n\n" if markdown
                      else "stream response implementations (gateway, chat streams x32)\n") +
                     table(IMPL_HEAD, rows))
    if (rows := memory_rows(results)):
        parts.append(("**Memory: slow streams held by one gateway worker**\n\n" if markdown
                      else "memory: slow streams held by one gateway worker\n") + table(MEMORY_HEAD, rows))
    if (rows := target_rows(results)):
        parts.append(("**Targets (issue 6)**\n\n" if markdown else "targets (issue 6)\n") +
                     table(TARGET_HEAD, rows))
    if not markdown and (lines := profile_lines(results)):
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
