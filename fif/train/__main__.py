"""`python -m fif.train RECIPE ...`: the `fif train` command on its own."""

from .command import train_cmd

train_cmd(prog_name="fif train")
