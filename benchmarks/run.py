"""fif against the libraries people use today, side by side, as ratios.

    python benchmarks/run.py [--quick] [--only NAME ...] [--threads N] [--write]

`--quick` (fewer sizes and repeats, one torch thread unless --threads says otherwise) takes about
2 minutes on 2 busy cores; the full run is for a quiet machine.

Runs each comparison (benchmarks/comparisons/, `--list` names them) in this one process, the
contenders interleaved, with warm-up and repeats, and prints a table of medians and ratios
(fif / other: below 1 means fif is faster), with the machine, torch version, thread count and load
average. Peers that are not installed are reported as skipped (benchmarks/README.md says how to
install them beside the local torch). `--write` writes benchmarks/results.md with the command that
made it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # fif and benchmarks from this repository

from benchmarks.comparisons import COMPARISONS, load  # noqa: E402
from benchmarks.harness import Config, Row, Summary, machine, markdown_table, text_table, versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.md"


def run_comparisons(names: list[str], cfg: Config, echo=print) -> tuple[list[Row], dict[str, str]]:
    """Rows of every named comparison; a comparison that fails gives one row saying why."""
    rows: list[Row] = []
    notes: dict[str, str] = {}
    for name in names:
        module = load(name)
        notes[name] = f"**{module.TITLE}.** {module.NOTE}"
        t0 = time.perf_counter()
        echo(f"== {name}: {module.TITLE}")
        try:
            for row in module.run(cfg):
                rows.append(row)
                ratio = "" if row.ratio is None else f"  fif/{row.other} = {row.ratio:.3g}"
                echo(f"   {row.case:<34} {row.unit:<11} fif {row.fif if row.fif is None else f'{row.fif:.4g}'}"
                     f"{ratio}  {row.note}")
        except Exception as e:  # one broken comparison must not hide the others
            rows.append(Row(name, "(failed)", "-", None, note=f"failed: {type(e).__name__}: {e}"[:300]))
            echo(traceback.format_exc())
        echo(f"   ({time.perf_counter() - t0:.0f} s)")
    return rows, notes


def header(s: Summary, quick: bool) -> str:
    i = s.info
    cores = int(i["cores"].split()[0] or 1)
    load_start = float(i["load"].split(",")[0])
    loaded = load_start > 0.5 * cores
    kind = "Quick run (`--quick`: fewer sizes and repeats)" if quick else "Full run"
    lines = [
        "# fif against the libraries people use: results",
        "",
        f"**{kind}{' on a loaded machine' if loaded else ''}.** Load average (1, 5, 15 min) {i['load']} at the "
        f"start and {s.load_after} at the end, on {i['cores']} cores"
        + (": other jobs were running, so every number here is indicative only; a full run on a quiet "
           "machine (`python benchmarks/run.py --write`) replaces this file." if loaded or quick else "."),
        "",
        f"Made by `{s.command}` in {s.seconds / 60:.1f} min.",
        "",
        f"- machine: {i['cpu']}, {i['cores']} cores, {i['system']}",
        f"- python {i['python']}, torch {i['torch']}, {i['threads']} torch threads, fif at commit {i['commit']}",
        "- peers: " + ", ".join(f"{k} {v}" for k, v in s.peers.items()),
        "",
        "Times are medians of interleaved repeats (contenders alternate, order reversed every other "
        "round). `fif/other` below 1 means fif is faster (or smaller); `met?` checks the target.",
        "",
    ]
    return "\n".join(lines)


def results_markdown(s: Summary, quick: bool) -> str:
    """benchmarks/results.md: the header, the table, how each comparison measures."""
    return (header(s, quick) + "\n" + markdown_table(s.rows) + "\n\n## How each comparison measures\n\n"
            + "\n\n".join(s.notes.values()) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes)")
    ap.add_argument("--only", action="append", choices=list(COMPARISONS), metavar="NAME",
                    help="run only this comparison (repeatable): " + ", ".join(COMPARISONS))
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice; "
                    "1 with --quick, which is meant for busy machines)")
    ap.add_argument("--repeats", type=int, help="timed repeats per measurement (default 9, quick 3)")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(RESULTS.parents[1])}")
    ap.add_argument("--list", action="store_true", help="list the comparisons and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name in COMPARISONS:
            print(f"{name:<10} {load(name).TITLE}")
        return 0
    import torch
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    cfg = Config.make(quick=args.quick, repeats=args.repeats)
    names = args.only or list(COMPARISONS)
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    peers = versions(sorted({p for n in names for p in load(n).PEERS}))
    summary = Summary(command.strip(), machine(), peers)
    print(f"fif benchmarks{' (quick)' if cfg.quick else ''}: {', '.join(names)}")
    print(f"torch {summary.info['torch']}, {summary.info['threads']} threads, {summary.info['cpu']}, "
          f"{summary.info['cores']} cores, load average {summary.info['load']}; peers: "
          + ", ".join(f"{k} {v}" for k, v in peers.items()))
    t0 = time.perf_counter()
    summary.rows, summary.notes = run_comparisons(names, cfg)
    summary.seconds = time.perf_counter() - t0
    summary.load_after = machine()["load"]
    print()
    print(text_table(summary.rows))
    print(f"\n{len(summary.rows)} rows in {summary.seconds:.0f} s; load average now {summary.load_after}")
    if args.write:
        RESULTS.write_text(results_markdown(summary, cfg.quick), encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
