"""The pipelines a recipe compiles, all through the one compile path: each defense or variant as
written, and the model an evaluation attacks (a pipeline that ends in logits).

    recipe ens {
      classifier = smallcnn(epochs=3)
      defense = bitdepth(2)                               # model: defense -> classifier (the default)
      model = mean { defense -> classifier | jpeg(50) -> classifier(member=1) }
      variants { four = bitdepth(4); members = vote { classifier(member=1) | classifier(member=2) } }
    }

An entry (the defense, or a variant) either maps an image to an image like its input (a defense:
its model is the recipe's `model` with `defense` bound to it, `defense -> classifier` by default)
or ends in logits (a whole model, evaluated as it is). Inside a model, `defense` is a `let`, so
the trained defense's weights load into it unchanged; so it is in a whole-model variant such as
`lenet = defense -> classifier(arch=lenet)` (the trained defense in front of another classifier).
"""

from __future__ import annotations

from pathlib import Path

from .errors import FifError, diagnostic
from .kinds import LogitsKind
from .syntax import nodes as n

DEFAULT_MODEL = n.Seq((n.Call("defense"), n.Call("classifier")))
BASELINE_MODEL = n.Call("classifier")


def compile_env(recipe, input_shape=None, classes: int | None = None, search=None):
    """The recipe's compile environment: its classifier's arch, width and classes; its folder;
    `search`, the table-search result `nnjpeg(table=search)` reads (train and eval set it)."""
    from .compiler import CompileEnv
    if classes is None:
        classes = data_info(recipe)[1]
    cs = recipe.classifier
    base = str(Path(recipe.file).parent) if recipe.file != "<string>" else None
    return CompileEnv(classifier=(cs.arch, cs.width, int(classes)), base=base,
                      search=None if search is None else str(search))


_DATA_INFO: dict = {}


def data_info(recipe) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) of the recipe's data. Remembered per data source (a shipped
    dataset by name, a file by path, size and modification time; folders are read every time), so
    compiling a recipe's pipelines again does not load and convert the images again."""
    key = _data_key(recipe)
    if key is not None and key in _DATA_INFO:
        return _DATA_INFO[key]
    if key is not None and key[0] == "builtin":
        from .data.sources import BUILTIN_INFO
        if key[1] in BUILTIN_INFO:
            return BUILTIN_INFO[key[1]]
    ds = recipe_dataset(recipe)
    info = tuple(ds.shape), ds.num_classes
    if key is not None:
        _DATA_INFO[key] = info
    return info


def _data_key(recipe):
    from .data.sources import BUILTIN
    name = recipe.data.name
    if name in BUILTIN:
        return ("builtin", name)
    path = Path(name).expanduser()
    if recipe.file != "<string>" and not path.is_absolute():
        path = Path(recipe.file).parent / path
    try:
        if not path.is_file():
            return None
        stat = path.stat()
    except OSError:
        return None
    return ("file", str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def recipe_dataset(recipe):
    """The recipe's dataset; an unknown name is an error at the recipe's `data = ...` line."""
    from .data import load_dataset
    base = Path(recipe.file).parent if recipe.file != "<string>" else None
    try:
        if recipe.data.kind in ("cifar10", "imagefolder"):  # a path source with its own reader
            path = Path(recipe.data.name).expanduser()
            path = base / path if base is not None and not path.is_absolute() else path
            if recipe.data.kind == "cifar10":
                from .data.cifar import load_cifar10
                return load_cifar10(path)
            from .data.stream import folder_dataset
            d = recipe.data
            return folder_dataset(path, size=d.size or 256, crop=d.crop or 224,
                                  workers=4 if d.workers is None else d.workers)
        return load_dataset(recipe.data.name, base=base)
    except FifError as e:
        if e.file != "<string>":
            raise  # a data file that exists but is wrong: the error names that file
        span = None
        node = recipe.program.recipes[0] if recipe.program is not None and recipe.program.recipes else None
        for entry in getattr(node, "entries", ()):
            if isinstance(entry, n.FieldEntry) and entry.name == "data":
                span = entry.value.span
        raise FifError(diagnostic(e.code, e.message, span, hint=e.hint, file=recipe.file,
                                  source=recipe.source)) from None


def _shape_env(recipe, input_shape, env):
    if input_shape is None or env is None:
        shape, classes = data_info(recipe)
        input_shape = input_shape or shape
        env = env or compile_env(recipe, input_shape, classes)
    return tuple(input_shape), env


def compile_entry(recipe, which: str = "defense", input_shape=None, env=None):
    """The defense or a variant as written: a fif.Pipeline from an image to an image or to logits."""
    from .compiler import compile_program
    shape, env = _shape_env(recipe, input_shape, env)
    expr = recipe.defenses()[which]
    pipeline = compile_program(recipe.program, shape, expression=expr, decls=recipe.entry_declarations(which),
                               env=env, source=recipe.pipeline_text(which))
    out = pipeline.output_kind
    if not isinstance(out, LogitsKind) and out != pipeline.plan.input_kind:
        raise FifError(diagnostic(
            "E322", f"a defense must give back an image like its input, {pipeline.plan.input_kind}, or end in "
            f"logits (a whole model); '{which}' gives {out}", getattr(expr, "span", None), file=recipe.file,
            source=recipe.source, hint="end it with `-> clamp` (features to image), keep the channel count, "
            "or end it with a classifier"))
    return pipeline


def is_model(pipeline) -> bool:
    return isinstance(pipeline.output_kind, LogitsKind)


def model_expression(recipe, which: str | None):
    """(expression, declarations) of the model for an entry; `which=None` is the plain classifier."""
    decls = list(recipe.declarations())
    if which is None:
        return BASELINE_MODEL, decls
    entry = recipe.defenses()[which]
    model = recipe.model if recipe.model is not None else DEFAULT_MODEL
    return model, decls + [n.Let("defense", entry)]


def compile_model(recipe, which: str | None, input_shape=None, env=None, entry=None):
    """The model an evaluation attacks for an entry (None: the undefended classifier): a
    fif.Pipeline ending in logits. Classifier ops have the right architecture; `fif eval` gives
    them their weights (fif.evaluate.models). `entry` is the entry's compiled pipeline, if known."""
    from .compiler import compile_program
    shape, env = _shape_env(recipe, input_shape, env)
    if which is not None:
        entry = entry if entry is not None else compile_entry(recipe, which, shape, env)
        if is_model(entry):
            return entry
        if recipe.model is not None and not _uses(recipe.model, "defense"):
            raise FifError(diagnostic(
                "E425", f"'{which}' is a defense, but the recipe's model does not use `defense`, so it would "
                "not be evaluated", getattr(recipe.model, "span", None), file=recipe.file, source=recipe.source,
                hint="use `defense` in the model (e.g. model = mean { defense -> classifier | ... }), or make "
                "the variant a whole model ending in a classifier"))
    expr, decls = model_expression(recipe, which)
    text = _model_text(expr, decls)
    model = compile_program(recipe.program, shape, expression=expr, decls=decls, env=env, source=text)
    if not is_model(model):
        raise FifError(diagnostic("E323", f"a model must end in logits (a classifier); this one gives "
                                  f"{model.output_kind}", getattr(expr, "span", None), file=recipe.file,
                                  source=recipe.source, hint="end it with `-> classifier`"))
    if which is not None and "defense" in model.shared:
        _copy_defense(entry, model)
    return model


def _copy_defense(entry, model) -> None:
    """Give the model's `let defense` (and the lets the defense uses) the entry's weights."""
    model.shared["defense"].load_state_dict(entry.root.state_dict())
    for name, module in entry.shared.items():
        model.shared[name].load_state_dict(module.state_dict())


def borrows_defense(recipe, which: str, entry) -> bool:
    """True when `which` is a whole-model variant whose every learnable weight sits in the
    recipe's defense (`lenet = defense -> classifier(arch=lenet)`): it is not trained on its own,
    it takes the trained defense's weights."""
    if which == "defense" or not is_model(entry) or "defense" not in entry.shared:
        return False
    borrowed = {id(p) for name, m in entry.shared.items() if name == "defense" or _in_defense(recipe, name)
                for p in m.parameters()}
    return not any(p.requires_grad and id(p) not in borrowed for p in entry.parameters())


def _in_defense(recipe, name: str) -> bool:
    """A let the defense uses (its weights come with the defense's)."""
    from .passes.resolve import stage_calls
    lets = {d.name: d.value for d in recipe.declarations() if isinstance(d, n.Let)}
    seen, todo = set(), [recipe.defense]
    while todo:
        for c, _ in stage_calls(todo.pop()):
            if c.name in lets and c.name not in seen:
                seen.add(c.name)
                todo.append(lets[c.name])
    return name in seen


def load_entry_weights(entry, model) -> None:
    """After loading trained weights into `entry`, copy them into its model."""
    if entry is not model and "defense" in model.shared:
        _copy_defense(entry, model)


def _uses(expr, name: str) -> bool:
    from .passes.resolve import stage_calls
    return any(c.name == name for c, _ in stage_calls(expr))


def _model_text(expr, decls) -> str:
    from .compiler import standalone_program
    from .syntax.printer import format_program
    return format_program(standalone_program(None, expr, decls))


def check_recipe(recipe, input_shape=None):
    """Compile every entry and its model, as train and eval would, without loading or training
    anything. Returns (the main entry's pipeline, one line per entry: `name: source -> model`)."""
    shape, env = _shape_env(recipe, input_shape, None)
    lines, main = [], None
    compile_model(recipe, None, shape, env)
    for which in recipe.defenses():
        entry = compile_entry(recipe, which, shape, env)
        model = compile_model(recipe, which, shape, env, entry=entry)
        main = main or entry
        lines.append(f"{which} ({'model' if is_model(entry) else 'defense'}, {model.output_kind})")
    return main, lines
