"""`fif train RECIPE`: the command line of `run_training`.

    fif train recipes/tiny.fif --seed 0
    fif train recipes/acm.fif --out runs/acm-try2 --checkpoint-every 100 --resume
    fif train recipes/acm.fif --nproc 2 --device cuda --amp     # two GPUs (torchrun), bfloat16 autocast
"""

from __future__ import annotations

import sys

import click

from ..cli_support import fail_cleanly


@click.command("train")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<recipe name>/train).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for everything random.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cpu, or cuda (under torchrun each process takes the GPU of its LOCAL_RANK).")
@click.option("--amp", is_flag=True, help="bfloat16 autocast on CUDA (an error on CPU).")
@click.option("--nproc", type=int, default=None, metavar="N",
              help="Run N processes with torchrun (one per GPU, or N on the CPU with gloo).")
@click.option("--resume", is_flag=True, help="Continue from the run directory's checkpoint.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="Write a checkpoint every N optimizer steps (and at the end of each epoch).")
@click.option("--only", default=None, metavar="NAME", help="Train only this pipeline: defense or a variant's name.")
@fail_cleanly
def train_cmd(recipe, out, seed, device, resume, checkpoint_every, only, amp, nproc):
    """Train the learnable parts of RECIPE, stage by stage; resumable and reproducible."""
    from .. import distributed as dist
    from ..recipe import load_recipe
    if nproc is not None:
        dist.check_nproc(nproc)
    r = load_recipe(recipe)  # bound and checked before torch loads: a typo costs a fraction of a second
    if nproc is not None and nproc > 1:
        raise SystemExit(dist.launch(nproc, sys.argv[1:]))
    from .run import run_training
    summary = run_training(r, out=out, seed=seed, device=device, resume=resume,
                           checkpoint_every=checkpoint_every, only=only, amp=amp)
    if dist.is_main():
        click.echo(render_summary(summary))
    dist.shutdown()


def render_summary(summary: dict) -> str:
    """The lines `fif train` prints at the end: one per stage, then the files written."""
    procs = summary.get("processes", 1)
    lines = [f"trained {summary['recipe']} (seed {summary['seed']}, {summary['device']}"
             + (f", {procs} processes" if procs > 1 else "") + (", resumed" if summary["resumed"] else "") + f") in {summary['seconds']:.1f} s of training"]
    for d in summary["stages"]:
        who = d["stage"] + ("" if d["target"] in ("defense", "classifier") else f" [{d['target']}]")
        if d["member"]:
            who += f" #{d['member']}"
        loss = "n/a" if d["loss"] is None else f"{d['loss']:.4g}"
        lines.append(f"  {who:<24} {d['epochs']} epoch(s), {d['steps']} steps, final loss {loss}, "
                     f"{d['seconds']:.1f} s")
    for s in summary["skipped"]:
        lines.append(f"  skipped {s['stage']} [{s['target']}]: {s['reason']}")
    for t in summary.get("untrained", []):
        lines.append(f"  note: '{t}' was not trained by any stage and no file is written for it; fif eval gives "
                     "it the trained weights of the lets it shares with other entries, if it has no weights of its own")
    for note in summary.get("notes", []):
        lines.append(f"  note: {note}")
    for f in summary["files"]:
        lines.append(f"wrote {f}")
    return "\n".join(lines)
