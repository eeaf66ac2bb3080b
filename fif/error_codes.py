"""Every error code fif uses, with what it means: one code, one meaning. `fif explain E201` prints one.

    acm.fif:3:49: error[E201]: unknown operator 'downpu'

Codes are stable and grouped: E1xx syntax, E2xx names and arguments, E3xx kinds, parts and shapes,
E4xx recipes and data, E5xx runtime. tests/test_error_codes.py checks that every code used in fif/
is listed here and every code listed here is used.
"""

from __future__ import annotations

GROUPS: dict[str, str] = {
    "E1": "syntax",
    "E2": "names and arguments",
    "E3": "kinds, parts and shapes",
    "E4": "recipes and data",
    "E5": "runtime",
}

CODES: dict[str, str] = {
    # -- E1xx syntax --------------------------------------------------------------------------------
    "E100": "fif was given something other than source text",
    "E101": "a character that is not part of the language",
    "E102": "the text ends in the middle of an expression",
    "E103": "a token where it cannot stand (keywords such as `recipe` or `in` are never names)",
    "E104": "a bracket, brace or '<' that is never closed",
    "E105": "a stray '->' with no stage on one side",
    "E106": "a malformed number, one too large for a float, or a fraction dividing by zero",
    "E107": "an unterminated string or an invalid escape in one",
    "E108": "brackets, blocks, part maps or signs nested deeper than the parser allows",
    # -- E2xx names and arguments -----------------------------------------------------------------------
    "E201": "an unknown operator (no op, let or def has this name)",
    "E202": "an unknown classifier",
    "E203": "a let or def that uses itself, directly or through others",
    "E204": "a name or def parameter declared twice",
    "E205": "a let or def that would hide an op of the same name",
    "E206": "a program with no pipeline to compile",
    "E207": "a value (number, string, list) where a pipeline stage is expected",
    "E208": "arithmetic ('+', '*', '-') where a pipeline stage is expected",
    "E209": "a pipeline that nests too deeply once lets and defs are expanded",
    "E210": "register_op: an op name that is not an identifier",
    "E211": "register_op: an op name that is already registered",
    "E212": "register_op: an op that declares a parameter twice",
    "E220": "more positional arguments than the op takes",
    "E221": "an argument or setting the op (or classifier, or training) does not have",
    "E222": "a required argument is missing",
    "E223": "an argument of the wrong type",
    "E224": "an argument outside its allowed range",
    "E225": "an argument given twice",
    "E226": "a value that is not one of the allowed choices",
    "E230": "branches `{ ... }` on an op that takes none",
    "E231": "a block with the wrong number of branches",
    "E232": "`for x in ...` over something that is not a non-empty list",
    "E233": "a block op used without its branches",
    "E234": "a let binding called with arguments",
    "E235": "a pipeline that unfolds (for branches, defs) to too many stages",
    "E236": "`classifier` (a recipe's classifier) used outside a recipe",
    "E237": "a chain member (`classifier(member=i)`) given other classifier settings",
    "E238": "a classifier's `encoded=` pipeline that is not a fixed image transform, or combined with adversarial training",
    "E250": "a bad argument to an attack",
    "E251": "an unknown attack",
    # -- E3xx kinds, parts and shapes -------------------------------------------------------------------
    "E300": "an input shape that is not three positive sizes (C, H, W)",
    "E301": "an op applied to a kind of value it does not take",
    "E302": "an op that needs an image with values in [0, 1] got something else",
    "E303": "idwt applied to parts another transform made",
    "E304": "idwt given a part that is not a tensor",
    "E310": "a part map applied to a value without parts",
    "E311": "a part the value does not have",
    "E312": "a part named twice in one part map",
    "E313": "'*' named twice in one part map",
    "E320": "mean over branches of different kinds or shapes",
    "E321": "residual around a pipeline that changes the shape",
    "E322": "a defense or input pipeline that does not give back an image like its input",
    "E323": "a recipe's model that does not end in logits",
    "E330": "a size that the op's factor or stride does not divide",
    "E331": "an odd size before dwt",
    "E332": "a part whose channel count changed before idwt",
    "E333": "a part whose size changed before idwt",
    "E334": "a classifier that cannot take inputs of this size",
    "E335": "an option that needs three (RGB) channels on an input with another count",
    "E336": "a kernel map whose channel count does not fit kpfilter(k) on its input",
    "E337": "a ufuse branch without exactly one kpfilter in its main line, or with sizes that do not match",
    "E338": "a vitdenoise whose patches do not tile its masks block's patches, or that sees another size",
    "E340": "a let (shared weights) used on inputs of different kinds or shapes",
    "E350": "a non-differentiable op that changes the shape and declares no surrogate gradient",
    "E360": "an op whose weights would be too large to allocate",
    # -- E4xx recipes and data --------------------------------------------------------------------------
    "E401": "no such file, folder or dataset, or it cannot be opened",
    "E402": "a data, weights or pipeline file that cannot be read as one (wrong format, damaged, keys missing)",
    "E403": "data arrays of the wrong shape",
    "E404": "data values that are not finite or out of range",
    "E405": "data whose sizes do not fit: no images, images vs labels, labels vs classes, split too large",
    "E406": "a source file that is not UTF-8 text",
    "E407": "weights that do not match the model or pipeline they are loaded into",
    "E412": "a loss term that is not a number times a loss",
    "E413": "a recipe file that does not hold exactly one recipe",
    "E414": "a recipe field or section given twice",
    "E415": "a recipe setting with an invalid value",
    "E416": "an unknown recipe field or section",
    "E417": "a recipe section that holds something other than `name = value` lines",
    "E418": "a train section that holds something other than `stage NAME { ... }`",
    "E419": "a recipe with no `defense = ...`",
    "E420": "training that would train nothing",
    "E421": "a learnable defense evaluated without a trained checkpoint",
    "E422": "a checkpoint trained for another pipeline than the recipe's",
    "E423": "an invalid training stage setting or option",
    "E424": "a training run that cannot be resumed",
    "E425": "a defense variant in a recipe whose model does not use `defense`",
    "E426": "nnjpeg(table=search) without the recipe's table-search result (`fif search` has not run)",
    "E427": "a table search in which no grid point keeps benign accuracy within the allowed drop",
    "E428": "a streamed dataset (imagefolder) used where every image would have to be in memory at once",
    "E430": "a report whose evaluation results are missing",
    "E431": "a report command that failed",
    "E432": "an unknown report name",
    # -- E5xx runtime ------------------------------------------------------------------------------
    "E501": "a pipeline run on inputs of another shape than it was compiled for",
    "E502": "attack inputs that are not finite or not in [0, 1]",
    "E503": "a generator for random ops that is not a torch.Generator",
    "E504": "a mask reaching vitdenoise that is not aligned to its patches",
    "E510": "a loss or weights that became NaN or infinite during training",
    "E520": "a device that is unknown or not available",
    "E521": "a multi-process run that cannot start: --nproc below 1, nested torchrun, NCCL without GPUs",
    "E522": "--amp (bfloat16 autocast) asked for where fif does not allow it (CPU devices)",
    "E599": "an internal error in fif (a bug: rerun with --debug and report it)",
}


def explain(code: str) -> str | None:
    """`E201: an unknown operator ...` (with its group), or None for a code fif does not use."""
    code = code.strip().upper()
    if code not in CODES:
        return None
    return f"{code} ({GROUPS[code[:2]]}): {CODES[code]}"
