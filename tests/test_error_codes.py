"""One table of error codes (fif/error_codes.py): every code fif uses is in it with one meaning,
every code in it is used, and `fif explain` prints them."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fif.cli import main
from fif.error_codes import CODES, GROUPS, explain

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "fif" / "error_codes.py"
CODE = re.compile(r"\bE\d{3}\b")


def _codes_in(paths) -> dict[str, list[str]]:
    """code -> the files (relative) whose text mentions it: string literals, docstrings, comments."""
    found: dict[str, list[str]] = {}
    for p in paths:
        for code in set(CODE.findall(p.read_text(encoding="utf-8"))):
            found.setdefault(code, []).append(str(p.relative_to(ROOT)))
    return found


SOURCES = [p for p in sorted((ROOT / "fif").rglob("*.py")) if p != TABLE]
USED = _codes_in(SOURCES)


def test_the_scan_sees_the_package():
    assert len(SOURCES) > 40
    assert {"E201", "E401", "E108", "E599"} <= set(USED)


@pytest.mark.parametrize("code", sorted(USED))
def test_every_code_used_in_the_package_is_in_the_table(code):
    assert code in CODES, f"{code} is used in {USED[code]} but not listed in fif/error_codes.py"


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_in_the_table_is_used(code):
    assert code in USED, f"{code} is listed in fif/error_codes.py but nothing in fif/ raises it"


def test_codes_are_well_formed_grouped_and_in_order():
    assert list(CODES) == sorted(CODES)
    for code, meaning in CODES.items():
        assert re.fullmatch(r"E[1-5]\d\d", code), code
        assert code[:2] in GROUPS
        assert meaning and meaning == meaning.strip() and "\n" not in meaning and len(meaning) < 110
    assert list(GROUPS.values()) == ["syntax", "names and arguments", "kinds, parts and shapes",
                                     "recipes and data", "runtime"]


def test_no_two_codes_share_a_meaning():
    meanings = [m.lower() for m in CODES.values()]
    assert len(set(meanings)) == len(meanings)


def test_codes_raised_by_code_are_in_the_table():
    """The literal codes passed to error(), diagnostic(), sink.add(), KindError(), ... all exist."""
    literal = re.compile(r"""["'](E\d{3})["']""")
    raised = {c for p in SOURCES for c in literal.findall(p.read_text(encoding="utf-8"))}
    assert len(raised) > 60
    assert raised <= set(CODES), sorted(raised - set(CODES))


def test_tests_pin_only_codes_that_exist():
    noqa = re.compile(r"# noqa\b.*")  # linter codes such as E731 are not fif's
    unknown = {}
    for p in sorted((ROOT / "tests").glob("*.py")):
        if p.name != Path(__file__).name:
            for code in CODE.findall(noqa.sub("", p.read_text(encoding="utf-8"))):
                if code not in CODES:
                    unknown.setdefault(code, p.name)
    assert not unknown, unknown


def test_explain():
    assert explain("e201") == f"E201 (names and arguments): {CODES['E201']}"
    assert explain("E999") is None
    runner = CliRunner()
    one = runner.invoke(main, ["explain", "E406"])
    assert one.exit_code == 0 and one.output.strip() == explain("E406")
    every = runner.invoke(main, ["explain"])
    assert every.exit_code == 0
    assert all(code in every.output for code in CODES) and "E4xx recipes and data" in every.output
    bad = runner.invoke(main, ["explain", "E999"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
