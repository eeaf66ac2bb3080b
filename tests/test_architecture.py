"""The layering DESIGN.md section 4 asks for: no import cycles inside fif (counting imports made
inside functions too), except the one deliberate edge where the registry loads the built-in
catalog on first use."""

import ast
import pathlib

import fif

ROOT = pathlib.Path(fif.__file__).parent
ALLOWED = {("fif.registry", "fif.ops")}   # registry._ensure_builtin_ops imports the catalog lazily


def _modules():
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = ("fif",) + p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _imports(tree):
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:` (types only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _edges(mods):
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in _imports(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    cand = f"{target}.{a.name}"
                    if cand in mods:
                        edges[m].add(cand)
                    elif target in mods:
                        edges[m].add(target)
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names if a.name in mods}
    return edges


def _reaches(edges, start, goal):
    seen, stack = set(), [start]
    while stack:
        cur = stack.pop()
        for nxt in edges[cur]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def test_no_import_cycles():
    mods = _modules()
    edges = _edges(mods)
    for a, b in ALLOWED:
        edges[a].discard(b)
    cycles = sorted((a, b) for a in edges for b in edges[a] if a != b and _reaches(edges, b, a))
    assert not cycles, f"import cycles: {cycles}"


def test_the_plan_and_the_passes_do_not_import_torch():
    """Planning is torch-free (DESIGN section 4): only build and what runs modules import torch."""
    for name in ("plan.py", "kinds.py", "errors.py", "compiler.py", "registry.py"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "import torch" not in text, name
    for p in (ROOT / "passes").glob("*.py"):
        assert "import torch" not in p.read_text(encoding="utf-8"), p.name
    for p in (ROOT / "syntax").glob("*.py"):
        assert "import torch" not in p.read_text(encoding="utf-8"), p.name


def test_help_and_fmt_leave_torch_unimported(tmp_path):
    """Formatting is torch-free by design, so `fif fmt` can run on save in an editor."""
    import subprocess
    import sys
    recipe = tmp_path / "r.fif"
    recipe.write_text("recipe r {\n  defense = bitdepth(2)\n}\n")
    probe = ("import sys, runpy\nsys.argv = ['fif'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('fif', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    for args in (["--help"], ["fmt", "--check", str(recipe)]):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert out.stdout.strip().splitlines()[-1] == "NO-TORCH", (args, out.stdout, out.stderr)


def test_a_recipe_mistake_fails_before_torch_is_imported(tmp_path):
    """`fif eval` and `fif train` bind the recipe first, torch-free, so `pgd(stepz=10)` costs a
    fraction of a second, not a torch import and a trained classifier."""
    import subprocess
    import sys
    recipe = tmp_path / "r.fif"
    recipe.write_text("recipe r {\n  defense = bitdepth(2)\n  eval { attacks = [pgd(stepz=10)] }\n"
                      "  train { stage s { inputs = adversarial(attack=fgsm, eps=uniform(0, 0.3)); loss = l1 } }\n}\n")
    probe = ("import sys, runpy\nsys.modules['torch'] = None   # any import of torch fails loudly\n"
             "sys.argv = ['fif'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('fif', run_name='__main__')\nexcept SystemExit as e:\n    print('EXIT', e.code)\n")
    for command in ("eval", "train"):
        out = subprocess.run([sys.executable, "-c", probe, command, str(recipe)], capture_output=True, text=True,
                             timeout=120)
        assert "EXIT 1" in out.stdout and "3:25: error[E221]" in out.stderr, (command, out.stdout, out.stderr)


def test_torch_free_classifier_widths_match_the_networks():
    from fif.models.classifiers import ARCHS
    from fif.models.settings import WIDTHS
    assert WIDTHS == {arch: width for arch, (_, width, _) in ARCHS.items()}
