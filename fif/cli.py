"""The `fif` command line: compile, fmt, ops, search, train, eval, report, explain.

    fif compile -e 'dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt' --input-shape 1,28,28

Exit codes: 0 success, 1 a fif or recipe error (diagnostics on stderr, no traceback unless
--debug), 2 bad command-line usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .cli_support import fail_cleanly as _fail_cleanly, read_text as _read
from .errors import FifError, diagnostic

# Wide tables when piped (rich would assume 80 columns); the terminal's width otherwise.
out = Console(width=None if sys.stdout.isatty() else 200)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="fif", prog_name="fif")
def main(debug):
    """fif: write, train and honestly evaluate input-transformation defenses."""


def _shape(text: str):
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
        if len(shape) == 3 and min(shape) > 0:
            return shape
    except ValueError:
        pass
    raise click.BadParameter(f"expected C,H,W such as 1,28,28, got {text!r}")


@main.command("compile")
@click.argument("file", required=False)
@click.option("-e", "--expr", "expr", help="Compile this text instead of a file.")
@click.option("--input-shape", default=None, help="C,H,W of one input (default 1,28,28, or the recipe's data).")
@click.option("--json", "as_json", is_flag=True, help="Print the stage table as JSON.")
@_fail_cleanly
def compile_cmd(file, expr, input_shape, as_json):
    """Parse, check and build FILE (or -e EXPR); print one row per stage."""
    from .api import compile as fif_compile
    if (file is None) == (expr is None):
        raise click.UsageError("give a FILE or -e EXPR (one of them)")
    text, name = (expr, "<expr>") if expr is not None else (_read(file), file)
    recipe = _recipe_of(text, name)
    checked = []
    if recipe is not None:  # every check train and eval would make, before anything trains
        from .recipe_models import check_recipe
        shape = _shape(input_shape) if input_shape is not None else None
        pipeline, checked = check_recipe(recipe, shape)
    else:
        shape = _shape(input_shape) if input_shape is not None else (1, 28, 28)
        pipeline = fif_compile(text, input_shape=shape, name=name)
    rows = pipeline.stages()
    summary = {
        "source": pipeline.source.rstrip("\n"), "input": str(pipeline.plan.input_kind),
        "output": str(pipeline.output_kind),
        "weights": sum(p.numel() for p in pipeline.parameters()), **pipeline.plan.flags(),
    }
    if as_json:
        click.echo(json.dumps({"pipeline": summary, "stages": rows}, indent=2, default=_jsonable))
        return
    table = Table(title=f"{name}: {summary['input']} -> {summary['output']}", title_justify="left")
    for col in ("stage", "op", "kind", "output shape", "parameters", "weights", "learnable", "differentiable", "random"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["stage"], r["op"], r["kind"], _show_shape(r["shape"]), _show_params(r["params"]),
                      str(r["weights"]), _yes(r["learnable"]), _yes(r["differentiable"]), _yes(r["random"]))
    out.print(table)
    out.print(f"{summary['weights']} weights; learnable: {_yes(summary['learnable'])}; "
              f"differentiable: {_yes(summary['differentiable'])}; random: {_yes(summary['random'])}")
    if not summary["differentiable"]:
        out.print("non-differentiable stages pass their surrogate gradient in the attack view (BPDA)")
    if checked:
        out.print("checked, with their models: " + "; ".join(checked))


def _recipe_of(text, name):
    """The recipe in `text` (its data then decides the input shape), or None for a bare pipeline."""
    from .syntax import parse
    program = parse(text, name)
    if program.recipes and not program.statements:
        from .recipe import recipe_from_program
        return recipe_from_program(program)
    return None


def _jsonable(v):
    if isinstance(v, tuple):
        return list(v)
    from .syntax import nodes
    if type(v).__module__ == nodes.__name__:     # a pipeline argument, e.g. classifier(encoded=thermometer(16))
        from .syntax.printer import expr
        return expr(v)
    return str(v)


def _show_shape(shape) -> str:
    if isinstance(shape, dict):
        sizes = {tuple(s) for s in shape.values()}
        if len(sizes) == 1:
            return f"{len(shape)} parts x {'x'.join(map(str, sizes.pop()))}"
        return ", ".join(f"{k}:{'x'.join(map(str, s))}" for k, s in shape.items())
    return "x".join(map(str, shape))


def _show_params(params: dict) -> str:
    from .syntax.printer import format_number
    def show(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, (int,)):
            return format_number(v)
        if isinstance(v, tuple):
            return "[" + ", ".join(show(x) for x in v) + "]"
        return "none" if v is None else _jsonable(v)
    return ", ".join(f"{k}={show(v)}" for k, v in params.items())


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@main.command("fmt")
@click.argument("files", nargs=-1, required=True)
@click.option("--check", is_flag=True, help="Only report files that are not canonical (exit 1 if any).")
@_fail_cleanly
def fmt_cmd(files, check):
    """Rewrite FILES in canonical form (comments are kept)."""
    from .api import format as fif_format
    unformatted = []
    for f in files:
        text = _read(f)
        canonical = fif_format(text, name=f)
        if canonical != text:
            unformatted.append(f)
            if not check:
                Path(f).write_text(canonical, encoding="utf-8")
                click.echo(f"formatted {f}")
    if check:
        for f in unformatted:
            click.echo(f"would reformat {f}")
        if unformatted:
            sys.exit(1)
        click.echo(f"{len(files)} file(s) already canonical")


@main.command("ops")
@click.argument("pattern", required=False)
@click.option("--recipe", "recipe", is_flag=True, help="List what a recipe names instead: data sources, "
              "classifiers, attacks, losses, inputs, optimizers, schedules, eval and stage settings.")
@_fail_cleanly
def ops_cmd(pattern, recipe):
    """List the op catalog (optionally the ops whose name matches PATTERN, e.g. 'dwt' or 'down*')."""
    import fnmatch
    from .registry import all_ops
    if recipe:
        return _recipe_catalog(pattern)
    ops = all_ops()
    if pattern:
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        ops = {k: v for k, v in ops.items() if fnmatch.fnmatch(k, glob)}
        if not ops:
            from .errors import did_you_mean
            raise FifError(diagnostic("E201", f"no op matches '{pattern}'",
                                      hint=did_you_mean(pattern, all_ops()) or "run `fif ops` for the list"))
    table = Table(show_lines=False)
    for col in ("op", "signature", "family", "learnable", "differentiable", "random", "what it does"):
        table.add_column(col, overflow="fold")
    for name, spec in ops.items():
        flags = [_flag(getattr(spec, f)) for f in ("learnable", "differentiable", "random")]
        table.add_row(name, spec.signature(), spec.family, *flags, spec.summary().split(": ", 1)[-1])
    out.print(table)


def _recipe_catalog(pattern):
    """`fif ops --recipe [PATTERN]`: every signature the recipe binder knows, by family."""
    import fnmatch

    from rich.markup import escape

    from .recipe_binding import catalog
    glob = None if not pattern else pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    table = Table(show_lines=False)
    for col in ("family", "name", "signature"):
        table.add_column(col, overflow="fold")
    for family, entries in catalog().items():
        for name, sig in entries.items():
            if glob is None or fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(family, glob):
                table.add_row(family, name, escape(sig))
    out.print(table)


@main.command("explain")
@click.argument("code", required=False)
def explain_cmd(code):
    """What error CODE means (such as E201); without CODE, every code by group."""
    from .error_codes import CODES, GROUPS, explain
    if code is None:
        for prefix, group in GROUPS.items():
            click.echo(f"{prefix}xx {group}")
            for c, meaning in CODES.items():
                if c.startswith(prefix):
                    click.echo(f"  {c}  {meaning}")
        return
    text = explain(code)
    if text is None:
        raise click.BadParameter(f"fif has no error code {code!r}; `fif explain` lists them", param_hint="CODE")
    click.echo(text)


def _flag(v) -> str:
    return "depends" if callable(v) else _yes(bool(v))


def _add_run_commands():
    from .evaluate.command import eval_cmd
    from .reports.command import report_cmd
    from .search.command import search_cmd
    from .train.command import train_cmd
    main.add_command(search_cmd)
    main.add_command(train_cmd)
    main.add_command(eval_cmd)
    main.add_command(report_cmd)


_add_run_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
