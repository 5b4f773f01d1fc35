"""The vislint FiftyOne plugin: thin operators over :mod:`vislint.integrations.fiftyone`.

Install it with ``vislint fiftyone install-plugin`` (copies this folder, shipped in the vislint
wheel, into FiftyOne's plugins dir). Operators:

- ``vislint: scan dataset`` — scan the dataset or the current view (immediately, or delegated
  for long scans: ``fiftyone delegated launch`` runs the queue, with progress);
- ``vislint: show issues`` — open a run's saved view for one check;
- ``vislint: find copies in a saved scan`` — whether the selected samples already exist in a
  saved scan (this dataset's run's work dir, or another), changing nothing;
- ``vislint: resolve duplicates`` — keep one member per duplicate group, tag or delete the
  others (dangerous: the form says what would be deleted and needs a confirmation);
- ``vislint: delete run`` — remove what a run wrote (its field, tags, views, the embeddings
  field it created) and the run (dangerous).

Every operator first checks that this plugin's version equals the installed vislint's.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import fiftyone.operators as foo
import fiftyone.operators.types as types

_PLUGIN_DIR = Path(__file__).resolve().parent


def _plugin_version() -> str:
    for line in (_PLUGIN_DIR / "fiftyone.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip('"')
    return "unknown"


def _vfo():
    """The integration module, after checking that plugin and library versions agree."""
    import vislint

    if _plugin_version() != vislint.__version__:
        raise RuntimeError(f"the vislint plugin is version {_plugin_version()} but vislint "
                           f"{vislint.__version__} is installed; run `vislint fiftyone "
                           f"install-plugin` to update the plugin")
    import vislint.integrations.fiftyone as vfo

    return vfo


def _run_keys(ctx) -> list[str]:
    return _vfo().list_runs(ctx.dataset) if ctx.dataset is not None else []


def _key_input(inputs, ctx, required=True) -> str | None:
    """A dropdown of the dataset's vislint runs; returns the chosen key (or None)."""
    keys = _run_keys(ctx)
    if not keys:
        inputs.view("none", types.Warning(label="No vislint runs on this dataset",
                                          description="Run 'vislint: scan dataset' first."))
        return None
    choices = types.DropdownView()
    for k in keys:
        choices.add_choice(k, label=k)
    inputs.enum("key", choices.values(), default=keys[0], required=required, label="Run",
                view=choices)
    return ctx.params.get("key", keys[0])


class ScanDataset(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="scan_dataset", label="vislint: scan dataset",
            description="Find duplicates, leaks, label conflicts, outliers, invalid and "
                        "low-quality images; writes a field, tags and saved views",
            dynamic=True, allow_immediate_execution=True, allow_delegated_execution=True,
            risk_level="low")

    def resolve_input(self, ctx):
        import fiftyone as fo

        inputs = types.Object()
        schema = ctx.dataset.get_field_schema()
        # the fields start as the run of this key last read them (running the form as shown
        # repeats that run), else as guessed from the dataset
        last = _vfo().run_parameters(ctx.dataset, ctx.params.get("key") or "vislint")

        def start(name, choices, guess):
            return last[name] if last.get(name) in choices else guess

        label_fields = [""] + [n for n, f in schema.items()
                               if getattr(f, "document_type", None) in
                               (fo.Classification, fo.Detections, fo.Polylines, fo.Classifications)
                               or (isinstance(f, fo.StringField) and n not in ("filepath", "id"))]
        inputs.enum("label_field", label_fields, default=start("label_field", label_fields, ""),
                    label="Label field",
                    description="Classification, Detections or string field (empty: no labels)")
        split_fields = ["", "tags"] + [n for n, f in schema.items()
                                       if isinstance(f, fo.StringField) and n not in ("filepath", "id")]
        inputs.enum("split_field", split_fields,
                    default=start("split_field", split_fields,
                                  "tags" if ctx.dataset.distinct("tags") else ""),
                    label="Splits from",
                    description="'tags' (train/val/test sample tags), a string field, or empty")
        vector_fields = [""] + [n for n, f in schema.items()
                                if isinstance(f, (fo.VectorField, fo.ArrayField))]
        predictions = [""] + [n for n, f in schema.items()
                              if getattr(f, "document_type", None) is fo.Classification]
        inputs.enum("predictions", predictions,
                    default=start("predictions_field", predictions, ""), label="Predictions",
                    description="a model's Classification field (logits, or label and "
                                "confidence): labels it contradicts become label conflicts; "
                                "empty: none")
        inputs.enum("embeddings", vector_fields, default=start("embeddings_field", vector_fields, ""),
                    label="Embeddings",
                    description="a model's embeddings field, for the label vote and outliers "
                                "(copies are always judged by vislint's own descriptor); "
                                "empty: none")
        # the key is free text: a name that is not vislint's (a label field, Brain's
        # "uniqueness", ...) is refused here, before the user can run the scan
        try:
            _vfo().check_names(ctx.dataset, ctx.params.get("key") or "vislint")
            problem = None
        except ValueError as e:
            problem = str(e)
        inputs.str("key", default="vislint", required=True, label="Run key",
                   description="names the field, tags and views; the same key replaces a run",
                   invalid=problem is not None, error_message=problem or "")
        if problem:
            inputs.view("key_taken", types.Error(label="Choose another run key",
                                                 description=problem))
        inputs.bool("view_only", default=False, label="Only the current view",
                    description="scan the current view instead of the whole dataset")
        inputs.bool("delegate", default=False, label="Delegate",
                    description="queue the scan for a delegated-operations worker "
                                "(`fiftyone delegated launch`); recommended above ~50k images")
        return types.Property(inputs, view=types.View(label="vislint: scan dataset"))

    def resolve_delegation(self, ctx):
        return bool(ctx.params.get("delegate", False))

    def execute(self, ctx):
        vfo = _vfo()
        target = ctx.view if ctx.params.get("view_only") else ctx.dataset

        def progress(done, total):
            ctx.set_progress(progress=done / max(total, 1), label=f"{done}/{total} images")

        run = vfo.scan(target, label_field=ctx.params.get("label_field") or None,
                       split_field=ctx.params.get("split_field") or None,
                       embeddings=ctx.params.get("embeddings") or None,
                       predictions_field=ctx.params.get("predictions") or None,
                       key=ctx.params.get("key") or "vislint", progress=progress)
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        summary = run.summary()
        return {"key": run.key, "views": run.views,
                "flagged": {r["check"]: int(r["images"]) for r in summary.to_dict("records")}}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("key", label="Run key")
        outputs.obj("flagged", label="Images flagged per check", view=types.JSONView())
        outputs.list("views", types.String(), label="Saved views")
        return types.Property(outputs)


class ShowIssues(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="show_issues", label="vislint: show issues",
                                  description="Open the saved view of one check of a vislint run",
                                  dynamic=True, allow_immediate_execution=True,
                                  allow_delegated_execution=True, risk_level="low")

    def resolve_input(self, ctx):
        inputs = types.Object()
        if _key_input(inputs, ctx) is None:
            return types.Property(inputs)
        titles = list(_vfo().views())
        choices = types.RadioGroup()
        for t in titles:
            choices.add_choice(t, label=t, description=_vfo().views()[t])
        inputs.enum("check", choices.values(), default="duplicates", required=True,
                    label="Check", view=choices)
        return types.Property(inputs, view=types.View(label="vislint: show issues"))

    def execute(self, ctx):
        vfo = _vfo()
        name = vfo.view_name(ctx.params["key"], ctx.params.get("check", "duplicates"))
        count = ctx.dataset.load_saved_view(name).count()
        if not ctx.delegated:  # a delegated run has no App to show the view in
            ctx.ops.set_view(name=name)
        return {"view": name, "count": count}


class ShowRelated(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="show_related", label="vislint: show related samples",
            description="Show the selected samples (or the one open) with their copies, "
                        "same-scene shots, leak partners and nearest images",
            dynamic=True, allow_immediate_execution=True, risk_level="low")

    def resolve_input(self, ctx):
        inputs = types.Object()
        if _key_input(inputs, ctx) is None:
            return types.Property(inputs)
        _warn_unless_chosen(inputs, ctx)
        return types.Property(inputs, view=types.View(label="vislint: show related samples"))

    def execute(self, ctx):
        chosen = _required_chosen(ctx)
        view = _vfo().related(ctx.dataset, chosen, ctx.params["key"])
        ctx.ops.set_view(view=view)
        return {"count": len(view)}


class FindCopies(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="find_copies", label="vislint: find copies in a saved scan",
            description="Do the selected samples already exist in a saved scan (this dataset's "
                        "work dir, or another)? Exact copies, verified copies and same-scene "
                        "shots; nothing is changed",
            dynamic=True, allow_immediate_execution=True, risk_level="low")

    def resolve_input(self, ctx):
        inputs = types.Object()
        keys = _run_keys(ctx)
        key = ctx.params.get("key", keys[0] if keys else None)
        if keys:
            choices = types.DropdownView()
            for k in keys:
                choices.add_choice(k, label=k)
            inputs.enum("key", choices.values(), default=key, label="Run whose work dir to search",
                        view=choices)
        default = _vfo().run_work_dir(ctx.dataset, key) if key else None
        inputs.str("index", default=default, required=default is None,
                   label="Work dir of the saved scan",
                   description="the --out folder of a vislint scan (default: the run's own)")
        _warn_unless_chosen(inputs, ctx)
        return types.Property(inputs, view=types.View(label="vislint: find copies in a saved scan"))

    def execute(self, ctx):
        chosen = _required_chosen(ctx)
        found, view = _vfo().find_copies(ctx.dataset, chosen, ctx.params.get("index") or None,
                                         ctx.params.get("key", "vislint"))
        if len(view):
            ctx.ops.set_view(view=view)
        return {"counts": found.counts(), "in_dataset": len(view),
                "matches": found.matches_table.slice(0, 50).select(
                    ["query_relpath", "kind", "score", "match_path"]).to_pylist()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.obj("counts", label="Selected samples by what they are")
        outputs.int("in_dataset", label="Samples shown (the selected ones with their matches here)")
        outputs.list("matches", types.Object(), label="Matches (first 50)")
        return types.Property(outputs)


def _warn_unless_chosen(inputs, ctx) -> None:
    if not _chosen(ctx):
        inputs.view("none", types.Warning(
            label="No sample selected", description="Select samples in the grid, or open one, first."))


def _required_chosen(ctx) -> list[str]:
    """:func:`_chosen`, which must not be empty."""
    chosen = _chosen(ctx)
    if not chosen:
        raise ValueError("select samples in the grid, or open one, first")
    return chosen


def _chosen(ctx) -> list[str]:
    """The selected samples' ids, else the open sample's, else []."""
    if ctx.selected:
        return list(ctx.selected)
    current = getattr(ctx, "current_sample", None)
    return [current] if current else []


class ResolveDuplicates(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="resolve_duplicates", label="vislint: resolve duplicates",
            description="Keep one image per duplicate group; tag or delete the others",
            dynamic=True, allow_immediate_execution=True, allow_delegated_execution=True,
            risk_level="dangerous")

    def resolve_input(self, ctx):
        inputs = types.Object()
        key = _key_input(inputs, ctx)
        if key is None:
            return types.Property(inputs)
        actions = types.RadioGroup()
        actions.add_choice("tag", label="Tag", description=f"tag the others '{key}:remove'")
        actions.add_choice("delete", label="Delete", description="delete the others from the dataset")
        inputs.enum("action", actions.values(), default="tag", label="Action", view=actions)
        with warnings.catch_warnings():  # shown in the form instead
            warnings.simplefilter("ignore")
            plan = _vfo().resolve_duplicates(ctx.dataset, key=key, dry_run=True)
        n_remove, n_groups = len(plan["remove"]), plan["groups"]
        if plan["warning"]:  # groups that changed since the scan: left alone
            inputs.view("changed", types.Warning(
                label=plan["warning"],
                description="Groups: " + "; ".join(f"{c['group']}: {c['change']}"
                                                   for c in plan["changed"][:10])))
        if ctx.params.get("action") == "delete":
            inputs.view("warning", types.Warning(
                label=f"This deletes {n_remove} samples from '{ctx.dataset.name}'",
                description=f"{n_groups} duplicate groups keep one member each (the one the "
                            f"keep policy chose). Deleted samples cannot be restored."))
            inputs.bool("confirm", default=False, required=True,
                        label=f"Yes, delete {n_remove} samples")
        else:
            inputs.view("notice", types.Notice(
                label=f"{n_groups} duplicate groups: {n_remove} samples would be tagged "
                      f"'{key}:remove', {len(plan['keep'])} '{key}:keep'"))
        return types.Property(inputs, view=types.View(label="vislint: resolve duplicates"))

    def execute(self, ctx):
        action = ctx.params.get("action", "tag")
        if action == "delete" and not ctx.params.get("confirm"):
            raise ValueError("deleting samples needs the confirmation box ticked (confirm=True)")
        with warnings.catch_warnings():  # returned in the result instead
            warnings.simplefilter("ignore")
            out = _vfo().resolve_duplicates(ctx.dataset, key=ctx.params["key"], action=action,
                                            dry_run=False)
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"action": out["action"], "groups": out["groups"], "kept": len(out["keep"]),
                "removed": len(out["remove"]), "changed": len(out["changed"]),
                "warning": out["warning"] or ""}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("groups", label="Groups resolved")
        outputs.int("kept", label="Samples kept")
        outputs.int("removed", label="Samples tagged for removal or deleted")
        outputs.int("changed", label="Groups left alone (changed since the scan)")
        outputs.str("warning", label="Warning")
        return types.Property(outputs)


class DeleteRun(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="delete_run", label="vislint: delete run",
                                  description="Remove a vislint run: its field, tags and views",
                                  dynamic=True, allow_immediate_execution=True,
                                  allow_delegated_execution=True, risk_level="dangerous")

    def resolve_input(self, ctx):
        inputs = types.Object()
        key = _key_input(inputs, ctx)
        if key is None:
            return types.Property(inputs)
        info = _vfo().load_run(ctx.dataset, key).info
        fields = ", ".join(f"'{f}'" for f in
                           [info["field"]] + info.get("own_embeddings_fields", []))
        inputs.view("warning", types.Warning(
            label=f"This removes what run '{key}' wrote on '{ctx.dataset.name}': the fields "
                  f"{fields}, the tags {', '.join(info['tags']) or '(none)'} and "
                  f"{len(info['views'])} saved views '{key}: *'",
            description="Samples are kept, and so is anything the run did not write."))
        inputs.bool("confirm", default=False, required=True, label=f"Yes, delete run '{key}'")
        return types.Property(inputs, view=types.View(label="vislint: delete run"))

    def execute(self, ctx):
        if not ctx.params.get("confirm"):
            raise ValueError("deleting a run needs the confirmation box ticked (confirm=True)")
        _vfo().delete_run(ctx.dataset, ctx.params["key"])
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"deleted": ctx.params["key"]}


def register(p):
    p.register(ScanDataset)
    p.register(ShowIssues)
    p.register(ShowRelated)
    p.register(FindCopies)
    p.register(ResolveDuplicates)
    p.register(DeleteRun)
