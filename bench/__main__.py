"""``python -m bench`` (``make bench``): every scenario in one bounded run; tables on stdout, JSON in .bench/.

    make bench                                   # ~4 minutes: everything, 2 rounds, 30 s soak, profiles
    make bench BENCH_ARGS=--quick                # ~1 minute: 1 short round, 10 s soak, no profiles
    make bench BENCH_ARGS="--soak 300"           # the 5-minute memory soak
    make bench BENCH_ARGS="--markdown"           # tables as Markdown, for docs/benchmarks.md
    python -m bench --show .bench/results.json   # the tables of a saved run again
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from bench import env, report
from bench.payloads import StreamShape
from bench.procs import ROOT, processes
from bench.run import STREAM_IMPLS, Options, phase_memory, phase_nonstream, phase_streams
from bench.streams import raise_fd_limit

PHASES = ("nonstream", "streams", "memory")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (~1 minute), no profiles")
    parser.add_argument("--seconds", type=float, help="length of each measured run (default 5, quick 2)")
    parser.add_argument("--soak", type=float, help="seconds the slow streams are held (default 30, quick 10)")
    parser.add_argument("--slow-streams", type=int, default=1000, help="concurrent slow streams (default 1000)")
    parser.add_argument("--stream-concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, help="interleaved rounds over all targets (default 2, quick 1)")
    parser.add_argument("--stream-chunks", type=int, default=8, help="events per fast stream (default 8)")
    parser.add_argument("--stream-delay-ms", type=float, default=20.0, help="pause between events (default 20)")
    parser.add_argument("--slow-chunks", type=int, default=20, help="events per slow stream (default 20)")
    parser.add_argument("--slow-delay-ms", type=float, default=500.0, help="pause between slow events (500)")
    parser.add_argument("--impls", default=",".join(STREAM_IMPLS),
                        help="stream responses to compare (default: lean,starlette,sse_starlette)")
    parser.add_argument("--only", default=",".join(PHASES), help="phases to run: nonstream,streams,memory")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                        help="py-spy profiles of the gateway (default on, off with --quick)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--no-install", action="store_true", help="never apt-get / pip install missing tools")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "results.json")
    parser.add_argument("--show", type=Path, metavar="JSON", help="print the tables of a saved run; run nothing")
    args = parser.parse_args(argv)

    opts = Options.quick() if args.quick else Options()
    impls = tuple(i.strip() for i in args.impls.split(",") if i.strip())
    phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
    for name, chosen, allowed in (("--impls", impls, STREAM_IMPLS), ("--only", phases, PHASES)):
        if not chosen or set(chosen) - set(allowed):
            parser.error(f"{name}: choose from {', '.join(allowed)}")
    if "lean" not in impls and "streams" in phases:
        parser.error("--impls must include lean: the gateway's stream figures are the lean response's")
    opts = replace(
        opts, impls=impls, phases=phases, stream_concurrency=args.stream_concurrency,
        slow_streams=args.slow_streams,
        stream_shape=StreamShape(args.stream_chunks, args.stream_delay_ms),
        slow_shape=StreamShape(args.slow_chunks, args.slow_delay_ms),
        profile=opts.profile if args.profile is None else args.profile,
    )
    if args.rounds:
        opts = replace(opts, rounds=max(1, args.rounds))
    if args.seconds:
        opts = replace(opts, seconds=args.seconds, profile_seconds=max(args.seconds, 3.0))
    if args.soak is not None:
        opts = replace(opts, soak=args.soak)
    return args, opts


def main(argv: list[str] | None = None) -> int:
    args, opts = parse(argv)
    if args.show:
        print(report.render(json.loads(args.show.read_text()), markdown=args.markdown))
        return 0
    started = time.monotonic()
    tools = env.ensure_system_tools(install=not args.no_install)
    if tools["wrk"] is None and "nonstream" in opts.phases:
        print("[bench] wrk is required for the non-stream scenarios: install it (apt-get install wrk) or run "
              "with --only streams,memory", file=sys.stderr)
        return 2
    pyspy = env.ensure_python_tools(install=not args.no_install) if opts.profile else None
    raise_fd_limit(4 * opts.slow_streams + 1024)
    ticks, own0, t0 = env.cpu_ticks(), env.own_cpu_seconds(), time.monotonic()
    args.out = args.out.resolve()
    work = args.out.parent
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"mode": "quick" if args.quick else "default", "meta": env.machine(tools),
                     "options": asdict(opts)}
    with processes(work / "logs") as group:
        if "nonstream" in opts.phases:
            results["nonstream"] = phase_nonstream(group, work, tools, opts, pyspy)
        if "streams" in opts.phases:
            results["streams"] = phase_streams(group, work, opts, pyspy)
        if "memory" in opts.phases:
            results["memory"] = phase_memory(group, opts)
    results["loadavg_at_end"] = env.loadavg()
    ticks_end = env.cpu_ticks()
    results["steal_pct"] = env.steal_pct(ticks, ticks_end)
    results["others_pct_of_core"] = env.others_pct_of_core(ticks, ticks_end, env.own_cpu_seconds() - own0,
                                                           time.monotonic() - t0)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["targets"] = report.targets(results)
    results["noise"] = report.noise(results)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(report.render(results, markdown=args.markdown))
    print(f"\n[bench] results: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
