"""Paper reports: each a spec (commands, tables, claims) that `fif report NAME` turns into
`reports/NAME.md`. See fif.reports.framework.

    fif report --list
    fif report acm --run
"""

from __future__ import annotations

import importlib

from .framework import FAILS, HOLDS, UNTESTED, Claim, Results, ReportSpec, Step, Table, Verdict, pct  # noqa: F401

# name -> module defining SPEC; modules load on first use.
REPORTS: dict[str, str] = {"acm": "fif.reports.acm", "bitdepth_sr": "fif.reports.bitdepth_sr",
                           "dir": "fif.reports.dir_defense", "jpeg_ensemble": "fif.reports.jpeg_ensemble",
                           "pafilt": "fif.reports.pafilt", "probe": "fif.reports.probe",
                           "zoo": "fif.reports.zoo"}


def get_report(name: str) -> ReportSpec:
    from ..errors import did_you_mean, error
    if name not in REPORTS:
        raise error("E432", f"no report named '{name}'",
                    hint=did_you_mean(name, REPORTS) or f"reports: {', '.join(sorted(REPORTS)) or 'none yet'}")
    return importlib.import_module(REPORTS[name]).SPEC
