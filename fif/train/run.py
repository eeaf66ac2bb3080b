"""`run_training`: one run of a recipe's train section, in its run directory.

    summary = run_training(fif.load_recipe("recipes/tiny.fif"), seed=0)

runs/<recipe>/train/ (or --out DIR) holds:
  checkpoint.safetensors   every model, optimizer state, RNG states, position (stage, epoch, step);
                           written every N steps and at the end of each epoch, atomically
  defense.safetensors      the trained defense (`fif.load` reads it); <variant>.safetensors for
                           each learnable variant; classifier.safetensors / classifier_<i>.safetensors
                           when stages fine-tune the classifier
  log.jsonl                one line per optimizer step: target, stage, member, epoch, step, t,
                           loss, terms, lr, seconds
  manifest.json            recipe text, seed, versions, git commit, device, command line
  tensorboard/             the loss and learning rate per step, when `tensorboard` is installed
Under torchrun (`fif train --nproc N`) every rank trains (fif.train.loop says how the batch is
split) and only rank 0 writes these files.
`--resume` continues from the checkpoint and, on CPU, ends with the same bytes as a run that was
never interrupted; it refuses a checkpoint made from another recipe text, seed or --only.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import torch

from .. import distributed as dist
from ..errors import FifError, diagnostic
from ..precision import check_amp
from ..scalars import Scalars
from ..models import atomic_write_json
from ..recipe_models import compile_entry, compile_env, is_model
from ..search import RESULT
from .checkpoint import Checkpoint, save_checkpoint, save_module, save_pipeline
from .context import Context, check_device, derive_seed
from .loop import UnitState, deterministic, finite_weights, train_unit
from .record import command_line, first_difference, fingerprint, manifest, now, rank_fingerprints
from .stages import (classifier_params, declared_lets, defense_params, nothing_to_train, plan_units,
                     unknown_pipeline)

CHECKPOINT = "checkpoint.safetensors"


def default_run_dir(recipe, runs=None) -> Path:
    return Path(runs if runs is not None else "runs") / recipe.name / "train"


def trained_weights(recipe, which: str = "defense", runs=None) -> Path | None:
    """Where `fif train` left the final weights of `which` (defense, a variant, classifier,
    classifier_<i>): runs/<recipe>/train/<which>.safetensors, or None when there are none."""
    path = default_run_dir(recipe, runs) / f"{which}.safetensors"
    return path if path.is_file() else None


def run_training(recipe, *, out=None, seed: int = 0, device: str = "cpu", resume: bool = False,
                 checkpoint_every: int = 50, only: str | None = None, amp: bool = False) -> dict:
    """Train what `recipe` marks learnable, stage by stage; return a summary dict (per unit:
    target, stage, member, epochs, steps, loss, seconds; files written). `recipe` is a Recipe or
    a path. Raises FifError: E420 nothing to train, E423 a bad stage setting, E424 a checkpoint
    that cannot be resumed, E404 NaN in the data, E510 a NaN/inf loss, E520 no such device,
    E521 no process group, E522 --amp on CPU. Under torchrun: this rank's share of each batch."""
    from ..recipe import Recipe, load_recipe
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    device = dist.setup(check_device(device))
    amp = check_amp(device, amp)
    if int(checkpoint_every) < 1:
        raise FifError(diagnostic("E423", f"checkpoint_every must be >= 1, got {checkpoint_every}"))
    if not recipe.train:
        raise nothing_to_train(recipe)
    out = Path(out) if out is not None else default_run_dir(recipe)
    with deterministic():
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        random.seed(seed)
        run = Run(recipe, out=out, seed=seed, device=device, checkpoint_every=int(checkpoint_every), only=only,
                  amp=amp)
        threads = torch.get_num_threads()
        try:
            return run.start(resume)
        finally:
            torch.set_num_threads(threads)


class Run:
    """The state of one run: models, units, position, run directory."""

    def __init__(self, recipe, *, out: Path, seed: int, device: str, checkpoint_every: int, only: str | None,
                 amp: bool = False):
        self.recipe, self.out, self.seed, self.device = recipe, out, seed, device
        self.every, self.only = checkpoint_every, only
        self.main = dist.is_main()  # only rank 0 writes files
        self.scalars = Scalars(out / "tensorboard") if self.main else None  # no file before the first scalar
        self.ctx = Context(recipe, seed=seed, device=device, amp=amp)
        names = list(recipe.defenses())
        if only is not None and only not in names:
            raise unknown_pipeline(recipe, only)
        selected = [only] if only is not None else names
        self.compiled = {}
        # nnjpeg(table=search) reads the table search beside the train folder (runs/<recipe>/search)
        self.env = compile_env(recipe, self.ctx.input_shape, self.ctx.train_ds.num_classes,
                               search=out.parent / "search" / RESULT)
        for name in dict.fromkeys(selected + (["defense"] if "defense" in names else [])):
            torch.manual_seed(derive_seed(seed, "init", name))
            pipeline = compile_entry(recipe, name, self.ctx.input_shape, self.env)
            if not is_model(pipeline):  # whole models (ending in logits) are evaluated as they are
                self.compiled[name] = pipeline.to(device)
        self.targets = [t for t in selected if t in self.compiled and self.compiled[t].learnable]
        if only is not None and not self.targets and any(s.params != "classifier" for s in recipe.train):
            from .context import stage_error
            stage = next(s for s in recipe.train if s.params != "classifier")
            raise stage_error(recipe, stage.name, "params", "E420",
                              f"--only {only}: '{only}' has no learnable weights, so stage '{stage.name}' "
                              "trains nothing",
                              "pick a learnable pipeline with --only, or leave --only out")
        self.lets = declared_lets(recipe)
        self.chain: dict[int, torch.nn.Module] = {}
        self.classifier_tuned = False
        self.units, self.skipped = plan_units(
            recipe, ctx=self.ctx, compiled=self.compiled, targets=self.targets, compile_expr=self._compile_expr,
            lets=self.lets, classifier_for=self._classifier_for, defense_for=self._defense_for)
        self.done: list[dict] = []
        self.global_step = 0
        self.last_ckpt: str | None = None
        self.log_file = None
        self.resumed = False
        self.notes: list[str] = []

    # -- models ----------------------------------------------------------------------------
    def _compile_expr(self, node):
        from ..compiler import compile_program
        r = self.recipe
        pipeline = compile_program(r.program, self.ctx.input_shape, expression=node, decls=r.declarations(),
                                   env=self.env)
        plan = pipeline.plan
        if plan.out != plan.input_kind:
            raise FifError(diagnostic("E322", f"an input pipeline must give back an image like its input, "
                                      f"{plan.input_kind}; this one gives {plan.out}", getattr(node, "span", None),
                                      file=r.file, source=r.source,
                                      hint="keep the input's channel count, and end features with `-> clamp`"))
        return pipeline.to(self.device)

    def _current_classifier(self, u):
        if u.member:
            return self.chain[u.member]
        return self.ctx.classifier()

    def _classifier_for(self, u):
        return self._current_classifier(u) if u.trains == "classifier" else self.ctx.classifier()

    def _defense_for(self, u):
        if u.trains == "defense":
            return self.compiled[u.target]
        if "defense" not in self.compiled:
            raise FifError(diagnostic("E423", "inputs = adversarial(against=defense) needs a `defense = ...` "
                                      "that maps images to images", file=self.recipe.file))
        return self.compiled["defense"]

    def models(self) -> dict:
        ms = {f"pipeline.{t}": self.compiled[t] for t in self.targets}
        if self.classifier_tuned:
            ms["classifier"] = self.ctx.classifier()
        ms.update({f"chain.{j}": m for j, m in sorted(self.chain.items())})
        return ms

    def _prepare(self, u):
        """(module trained, pipeline the losses run through, classifier, trainable parameters)."""
        if u.trains == "defense":
            pipeline = self.compiled[u.target]
            clf = self.ctx.classifier() if any(t.name in ("ce", "feature", "rep") for t in u.terms) else None
            pipeline.requires_grad_(False)
            params = defense_params(pipeline, u.stage, self.lets)[0]
            if clf is not None:
                clf.requires_grad_(False)
                clf.eval()
            model = pipeline
        else:
            if u.member:
                if 0 not in self.chain:
                    self.chain[0] = copy.deepcopy(self.ctx.classifier())
                if u.member not in self.chain:
                    self.chain[u.member] = copy.deepcopy(self.chain[u.member - 1])
                model = self.chain[u.member]
            else:
                model = self.ctx.classifier()
                self.classifier_tuned = True
            model.requires_grad_(False)
            params = classifier_params(model, u.stage)
            pipeline, clf = None, model
        for p in params:
            p.requires_grad_(True)
        return model, pipeline, clf, params

    # -- files -----------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.log_file is None:
            return
        self.log_file.write(json.dumps(record) + "\n")
        self.log_file.flush()
        if self.scalars is not None:
            tag = f"{record['target']}/{record['stage']}" + (f"#{record['member']}" if record["member"] else "")
            self.scalars.add(f"loss/{tag}", record["loss"], self.global_step + 1)
            self.scalars.add(f"lr/{tag}", record["lr"], self.global_step + 1)

    def last_checkpoint(self) -> str | None:
        return self.last_ckpt

    def after_step(self, u, state: UnitState, opt, end_of_epoch: bool) -> None:
        self.global_step += 1
        if end_of_epoch or self.global_step % self.every == 0:
            self.checkpoint(u.index, state, opt)

    def checkpoint(self, unit_index: int, state: UnitState | None, opt, complete: bool = False) -> None:
        self._check_weights(unit_index, state)
        if not self.main:
            return
        self.log_file.flush()
        info = {"recipe": self.recipe.name, "recipe_text": self.recipe.source, "seed": self.seed,
                "only": self.only, "device": self.device, "unit": unit_index,
                "unit_key": self.units[unit_index].key if unit_index < len(self.units) else None,
                "state": state.to_dict() if state is not None else None, "done": self.done,
                "global_step": self.global_step, "log_bytes": self.log_file.tell(),
                "classifier_tuned": self.classifier_tuned, "complete": complete,
                "threads": torch.get_num_threads()}
        save_checkpoint(self.out / CHECKPOINT, models=self.models(), optimizer=opt, info=info)
        if complete or unit_index >= len(self.units):
            where = "the end of training"
        else:
            u = self.units[unit_index]
            where = f"stage '{u.stage.name}'" + (f" [{u.target}]" if u.target not in (None, "defense") else "")
            if u.member:
                where += f" #{u.member}"
            if state is None:
                where += ", before it starts"
            elif state.step == 0:
                where += f", end of epoch {state.epoch}"
            else:
                where += f", epoch {state.epoch + 1}, step {state.step}"
        self.last_ckpt = f"{self.out / CHECKPOINT} ({where})"

    def _check_weights(self, unit_index: int, state: UnitState | None = None) -> None:
        bad = finite_weights(self.models())
        if bad is not None:
            u = self.units[min(unit_index, len(self.units) - 1)]
            when = ""
            if state is not None:
                when = (f", epoch {state.epoch + 1}, step {state.step}" if state.step
                        else f", end of epoch {state.epoch}") + f" (optimizer step {state.t} of the stage)"
            kept = f"the last good checkpoint is kept: {self.last_ckpt}" if self.last_ckpt else \
                "no checkpoint had been written yet"
            from .context import stage_error
            raise stage_error(self.recipe, u.stage.name, "optim", "E510",
                              f"stage '{u.stage.name}'{when}: weights became NaN or infinite ({bad}); training "
                              f"stopped without saving them, and {kept}",
                              "lower the learning rate (optim = adam(lr=...))")

    def _manifest(self) -> dict:
        record = manifest(self.recipe, seed=self.seed, device=self.device, only=self.only,
                          checkpoint_every=self.every, targets=self.targets)
        return {**record, "processes": dist.world_size() if dist.active() else 1, "amp": self.ctx.amp}

    # -- running ---------------------------------------------------------------------------
    def start(self, resume: bool) -> dict:
        path = self.out / CHECKPOINT
        start_unit, state, ck = 0, None, None
        if resume:
            ck = self._open_checkpoint(path)
            start_unit, state = self._restore(ck)
        elif self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in (path, self.out / "log.jsonl"):
                if stale.exists():
                    stale.unlink()
            self.log_file = open(self.out / "log.jsonl", "a", encoding="utf-8")
            atomic_write_json(self.out / "manifest.json", self._manifest())
        try:
            for u in self.units[start_unit:]:
                model, pipeline, clf, params = self._prepare(u)
                dist.broadcast_modules([model])  # every rank starts the unit from rank 0's weights
                resuming = state is not None and u.index == start_unit
                if not resuming:
                    state = UnitState(init=fingerprint(model))
                restore = ck.load_optimizer if resuming and ck is not None and "optim" in ck.meta else None
                state = train_unit(u, ctx=self.ctx, model=model, params=params, pipeline=pipeline, classifier=clf,
                                   hooks=self, state=state, restore=restore)
                self.done.append({"target": u.target or "classifier", "stage": u.stage.name, "member": u.member,
                                  "epochs": u.stage.epochs, "steps": state.t,
                                  "loss": state.epoch_losses[-1] if state.epoch_losses else None,
                                  "epoch_losses": state.epoch_losses, "seconds": round(state.seconds, 3),
                                  "init": state.init, "final": fingerprint(model)})
                state = None
                self.checkpoint(u.index + 1, None, None, complete=u.index + 1 == len(self.units))
            return self._finish()
        finally:
            if self.log_file is not None:
                self.log_file.close()
            if self.scalars is not None:
                self.scalars.close()

    def _open_checkpoint(self, path: Path) -> Checkpoint:
        if not path.is_file():
            raise FifError(diagnostic("E424", f"nothing to resume: there is no checkpoint at {path}",
                                      file=self.recipe.file,
                                      hint="run without --resume to start, or pass the --out of the interrupted run"))
        try:
            ck = Checkpoint(path)
        except ValueError as e:
            raise FifError(diagnostic("E424", f"cannot resume from {path}: {e}", file=str(path),
                                      hint="start afresh without --resume")) from None
        info, diffs = ck.info, []
        if info.get("seed") != self.seed:
            diffs.append(f"it was made with --seed {info.get('seed')}, this run has --seed {self.seed}")
        if info.get("recipe_text") != self.recipe.source:
            diffs.append("the recipe changed since: "
                         + first_difference(info.get("recipe_text") or "", self.recipe.source))
        if info.get("only") != self.only:
            diffs.append(f"it was made with --only {info.get('only')}, this run has --only {self.only}")
        if diffs:
            raise FifError(diagnostic("E424", f"will not resume from {path}: " + "; ".join(diffs),
                                      file=self.recipe.file,
                                      hint="resume with the same recipe and flags, or start afresh without --resume"))
        return ck

    def _restore(self, ck: Checkpoint):
        info = ck.info
        self.classifier_tuned = bool(info.get("classifier_tuned"))
        for name in ck.models:
            kind, _, rest = name.partition(".")
            if kind == "pipeline":
                ck.load_model(name, self.compiled[rest])
            elif kind == "classifier":
                ck.load_model(name, self.ctx.classifier())
            elif kind == "chain":
                m = copy.deepcopy(self.ctx.classifier())
                ck.load_model(name, m)
                self.chain[int(rest)] = m
        ck.load_rng()
        threads = info.get("threads")
        if threads and threads != torch.get_num_threads():
            # CPU results depend on the thread count; match the interrupted run's to end bit-identical
            self.notes.append(f"using {threads} CPU threads, as the interrupted run did "
                              f"(not {torch.get_num_threads()})")
            torch.set_num_threads(int(threads))
        self.done, self.global_step, self.resumed = list(info["done"]), int(info["global_step"]), True
        state = UnitState.from_dict(info["state"]) if info["state"] is not None else None
        if not self.main:  # rank 0 alone appends to the log and the manifest
            return int(info["unit"]), state
        with open(self.out / "log.jsonl", "ab") as f:
            f.truncate(int(info["log_bytes"]))
        self.log_file = open(self.out / "log.jsonl", "a", encoding="utf-8")
        self.last_ckpt = f"{self.out / CHECKPOINT}"
        mpath = self.out / "manifest.json"
        record = json.loads(mpath.read_text()) if mpath.is_file() else self._manifest()
        record.setdefault("resumes", []).append({
            "command": command_line(), "device": self.device, "at": now(),
            "from": {"unit": info["unit_key"], "state": info["state"]}})
        atomic_write_json(mpath, record)
        return int(info["unit"]), state

    def _finish(self) -> dict:
        self._check_weights(len(self.units))
        ranks = rank_fingerprints(self.models())
        if not self.main:  # rank 0 writes the files; the others report the same summary
            return self._summary([])
        files = []
        trained = {u.target for u in self.units if u.target is not None}
        for t in self.targets:
            if t in trained:
                save_pipeline(self.compiled[t], self.out / f"{t}.safetensors")
                files.append(str(self.out / f"{t}.safetensors"))
        meta = {"recipe": self.recipe.name, "data": self.recipe.data.name,
                "arch": self.recipe.classifier.arch}
        if self.classifier_tuned:
            save_module(self.ctx.classifier(), self.out / "classifier.safetensors", meta)
            files.append(str(self.out / "classifier.safetensors"))
        for j, m in sorted(self.chain.items()):
            save_module(m, self.out / f"classifier_{j}.safetensors", {**meta, "member": str(j)})
            files.append(str(self.out / f"classifier_{j}.safetensors"))
        mpath = self.out / "manifest.json"
        if mpath.is_file():
            record = json.loads(mpath.read_text())
            record["finished"] = now()
            record["files"] = [Path(f).name for f in files]
            record["rank_weights"] = ranks  # one fingerprint of every trained weight per rank: all equal
            atomic_write_json(mpath, record)
        return self._summary(files)

    def _summary(self, files: list[str]) -> dict:
        trained = {u.target for u in self.units if u.target is not None}
        skipped = [s for s in self.skipped]
        untrained = [t for t in self.targets if t not in trained]
        return {"recipe": self.recipe.name, "out": str(self.out), "seed": self.seed, "device": self.device,
                "processes": dist.world_size() if dist.active() else 1, "resumed": self.resumed,
                "notes": self.notes, "stages": self.done, "skipped": skipped, "untrained": untrained,
                "seconds": round(sum(d["seconds"] for d in self.done), 3), "files": files,
                "log": str(self.out / "log.jsonl"), "checkpoint": str(self.out / CHECKPOINT)}
