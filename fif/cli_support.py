"""Shared pieces of the command line: clean error rendering and file reading.

    @click.command()
    @fail_cleanly
    def train_cmd(recipe): ...
"""

from __future__ import annotations

import functools
import sys

import click

from .errors import FifError
from .sources import read_source


def fail_cleanly(fn):
    """Render FifError (and anything unexpected) without a traceback, unless --debug."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except FifError as e:
            if debug:
                raise
            click.echo(e.render(), err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as e:  # an internal error: say so plainly, keep the details for --debug
            if debug:
                raise
            click.echo(f"error[E599]: internal error: {type(e).__name__}: {e}\n"
                       " = hint: rerun with `fif --debug ...` for the traceback, and report it", err=True)
            sys.exit(1)
    return wrapper



def read_text(path: str) -> str:
    """A fif source file's text; E401 when it is missing, E406 when it is not UTF-8."""
    return read_source(path)
