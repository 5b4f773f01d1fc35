"""The vocabulary of checks: one record per check, read by everything that lists checks.

The result table's columns, the CLI's help and summary, the report's sections, the FiftyOne
fields, tags and saved views and the Label Studio review queues are all derived from
:func:`checks`; nothing else names the checks. A check is a function from the scan's shared
:class:`vislint.checks.context.Context` to one :class:`CheckResult`.

Adding a check is one new file holding its function, plus its record: append it here, or
call :func:`register` from the new file (a plug-in, or a test).

Every check writes ``is_<name>`` (the flag at the default threshold) and, where ``scored``,
``<name>_score`` in [0, 1] (higher = worse), then its evidence columns.

This module imports nothing heavy (no NumPy): the CLI builds its help from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable

UNITS = ("image", "group")
"""What one finding of a check is: one image, or a group of images shown together."""

SPACES = ("copy", "semantic")
"""Feature spaces: ``copy`` (the built-in descriptor and the rotation rule: is it the same
photograph?) and ``semantic`` (a model's or precomputed embeddings: what does it show?).
A check reading the semantic space reads the copy space when there is none."""

EVIDENCE_KINDS = ("float", "int", "bool", "str", "id", "ids", "labels")
"""Kinds of evidence columns: ``id`` an image id, ``ids`` image ids joined by ``;``, ``labels``
labels joined by ``|``; the others as named (missing values are NaN / -1 / None)."""


@dataclass(frozen=True)
class Check:
    """The record of one check.

    name: the check's name, in column names (``is_<name>``, ``<name>_score``).
    title: what its findings are called, plural ("near duplicates").
    what: what it finds, one line (the CLI's help).
    rule: when it flags, with ``{threshold}`` fields of :class:`vislint.Thresholds`.
    why: why the default threshold is what it is, one line (docs/defaults.md has the data).
    run: ``"module:function"`` (relative to ``vislint``) computing its :class:`CheckResult`.
    unit: "image" or "group" (see :data:`UNITS`).
    space: the feature space it reads ("copy", "semantic"), or None (file, statistics).
    threshold: the :class:`vislint.Thresholds` field of its flag, if one.
    scored: whether it writes ``<name>_score``.
    evidence: (column, kind) of the evidence columns it writes (kinds: :data:`EVIDENCE_KINDS`).
    pairs: whether it lists image pairs (``ScanResults.pairs(name)``).
    pair_evidence: (column, kind) of the evidence of each pair, in the pairs table.
    view: title of its review view: the FiftyOne saved view ``"<key>: <view>"`` and the Label
        Studio queue; checks sharing a title share the view. None: no view.
    queue: whether reviewers get a Label Studio queue for it.
    verdicts: the decisions a reviewer may record on it (:mod:`vislint.decisions`).
    clears: whether a ``keep`` / ``label_ok`` decision clears its flag (image findings; a
        duplicate stays a duplicate when a reviewer keeps it).
    gallery: how the report shows it: "group" (groups side by side), "conflict" (groups and
        voted images), "neighbours" (the image with its nearest neighbours), "invalid" (the
        reason), "image" (the image, worst first; a ``statistic`` is shown beside it).
    statistic: (column, name) of the statistic it judges, if one.
    group_column: a group check's image column numbering its groups (views sort by it).
    order: place among the checks (columns, summaries, sections follow it).
    """

    name: str
    title: str
    what: str
    rule: str
    run: str
    why: str = ""
    unit: str = "image"
    space: str | None = None
    threshold: str | None = None
    scored: bool = True
    evidence: tuple[tuple[str, str], ...] = ()
    pairs: bool = False
    pair_evidence: tuple[tuple[str, str], ...] = ()
    view: str | None = None
    queue: bool = True
    verdicts: tuple[str, ...] = ("keep", "remove")
    clears: bool = True
    gallery: str = "image"
    statistic: tuple[str, str] | None = None
    group_column: str = "duplicate_group"
    order: int = 1000

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"a check's name must be an identifier, got {self.name!r}")
        if self.unit not in UNITS:
            raise ValueError(f"check {self.name}: unit must be one of {UNITS}, got {self.unit!r}")
        if self.space not in (*SPACES, None):
            raise ValueError(f"check {self.name}: space must be one of {SPACES} or None")
        for column, kind in self.evidence + self.pair_evidence:
            if kind not in EVIDENCE_KINDS:
                raise ValueError(f"check {self.name}: evidence {column!r} has unknown kind {kind!r}")

    @property
    def flag(self) -> str:
        return f"is_{self.name}"

    @property
    def score(self) -> str | None:
        return f"{self.name}_score" if self.scored else None

    def rule_text(self, thresholds: dict | None = None) -> str:
        """:attr:`rule` with the thresholds filled in (the defaults when none are given);
        "off" when the check's threshold is unset."""
        if thresholds is None:
            from .thresholds import Thresholds

            thresholds = Thresholds().to_dict()
        if self.threshold is not None and thresholds.get(self.threshold, 0) is None:
            return f"off (set the {self.threshold} threshold)"
        try:  # (another threshold of the rule unset: that part is off)
            return self.rule.format(**{k: "∞ (off)" if v is None else v for k, v in thresholds.items()})
        except (KeyError, IndexError):
            return self.rule

    def function(self) -> Callable[[Any], "CheckResult"]:
        module, name = self.run.split(":")
        return getattr(import_module(module, __package__), name)


@dataclass
class CheckResult:
    """What a check found, in one shape for every check (arrays have one row per image).

    flag: bool[N], the images it flags.
    score: float[N] in [0, 1] (NaN where it does not apply), or None for an unscored check.
    columns: its evidence columns ({column: array or list of N values}).
    groups: its groups, as (group number, member rows with the representative first,
        similarity of each member to the representative).
    pairs: int64[P, 2] row pairs it calls (i < j), with ``pair_sims`` float32[P] (the pair's
        score: a similarity, or a probability) and ``pair_columns`` (the evidence of each
        pair, {column: array[P]}, as the record's ``pair_evidence`` names them).
    info: anything the summary shows beside the counts (e.g. the leak table).
    """

    flag: Any
    score: Any = None
    columns: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)
    pairs: Any = None
    pair_sims: Any = None
    pair_columns: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


PAIR_EVIDENCE = (("descriptor_similarity", "float"), ("residual_median", "float"),
                 ("residual_max", "float"), ("mirrored", "bool"), ("scale_x", "float"),
                 ("scale_y", "float"), ("rotation_angle", "float"))
"""What the pairs table shows of each verified pair (:mod:`vislint.checks.verification`): the
descriptor's similarity, the residual after alignment (median and worst cell of a 4 x 4 grid,
relative to contrast), and the alignment (mirror, scale along x and y, the rotation rule's
angle in degrees)."""

_BUILTIN = [
    Check("invalid", "invalid files", "a file that cannot be used; invalid_reason says why",
          "unreadable or unusable file", ".checks.invalid:invalid", scored=False,
          evidence=(("invalid_reason", "str"), ("invalid_message", "str")), view="invalid",
          queue=False, verdicts=("keep", "remove"), clears=False, gallery="invalid", order=0),
    Check("exact_duplicate", "exact duplicates",
          "same bytes, or same decoded pixels in another encoding", "same bytes or same pixels",
          ".checks.duplicates:exact_duplicate", unit="group", space="copy", pairs=True,
          view="duplicates", verdicts=("not_duplicate", "keep", "remove"), clears=False,
          gallery="group", order=10),
    Check("near_duplicate", "near duplicates",
          "the same photograph re-encoded, resized, cropped, flipped, recoloured or rotated: "
          "each pair verified by aligning the two images", "copy probability ≥ {near_duplicate}",
          ".checks.duplicates:near_duplicate",
          why="calibrated on labelled natural pairs and planted copies (docs/defaults.md)",
          unit="group", space="copy", threshold="near_duplicate", pairs=True,
          evidence=(("exact_group", "int"), ("duplicate_group", "int"), ("duplicate_of", "id"),
                    ("nearest_id", "id"), ("nearest_similarity", "float"),
                    ("duplicate_evidence", "str")),
          pair_evidence=PAIR_EVIDENCE,
          view="duplicates", verdicts=("not_duplicate", "keep", "remove"), clears=False,
          gallery="group", order=20),
    Check("same_scene", "same-scene shots",
          "another shot of the same scene (a burst, a moved subject): part of the frame matches "
          "exactly, part changed; never a copy", "verified same scene",
          ".checks.duplicates:same_scene",
          why="bursts labelled by eye on the Intel sample (docs/defaults.md)", unit="group",
          space="copy", pairs=True,
          evidence=(("scene_group", "int"), ("scene_of", "id"), ("scene_splits", "str"),
                    ("scene_evidence", "str")),
          pair_evidence=PAIR_EVIDENCE, view="same scene", verdicts=("keep", "remove"),
          clears=False, gallery="group", group_column="scene_group", order=25),
    Check("leak", "leaks", "a duplicate whose partner is in another split (train/valid/test)",
          "duplicate across splits", ".checks.leaks:leak", unit="group", space="copy",
          pairs=True, evidence=(("leak_partners", "ids"),), view="leaks",
          verdicts=("not_leak", "keep", "remove_from_train", "remove_from_eval"), clears=False,
          gallery="group", order=30),
    Check("in_reference", "copies of reference images",
          "an exact or verified copy of an image of the reference scan (scan --reference W: "
          "set A checked against set B, whose own findings are not looked for)",
          "exact copy, or copy probability ≥ {near_duplicate}, of a reference image",
          ".checks.reference:in_reference",
          why="the near-duplicate rules, against another scan (docs/query.md)", space="copy",
          threshold="near_duplicate",
          evidence=(("reference_match", "str"), ("reference_kind", "str"),
                    ("reference_evidence", "str")),
          view="in reference", verdicts=("keep", "remove"), order=35),
    Check("label_conflict", "label conflicts",
          "a duplicate group holding several labels; with semantic features, also neighbours "
          "voting for another label; with predictions, labels they contradict (confident "
          "learning)",
          "group with several labels, neighbour agreement ≤ {label_agreement}, or a label "
          "the predictions contradict",
          ".checks.labels:label_conflict",
          why="the vote flags only in the semantic space (docs/defaults.md)", unit="group",
          space="semantic", threshold="label_agreement",
          evidence=(("suggested_label", "str"), ("label_agreement", "float"),
                    ("conflict_labels", "labels"), ("predicted_label", "str"),
                    ("predicted_probability", "float"), ("label_sources", "str")),
          view="label conflicts", verdicts=("label_ok", "relabel", "remove"),
          gallery="conflict", order=40),
    Check("outlier", "outliers",
          "far from everything else: its nearest neighbours, or how it looks (robust z)",
          "neighbour distance z ≥ {outlier_z}, or appearance z ≥ {outlier_appearance_z}",
          ".checks.outliers:outlier", space="semantic",
          why="1 % of untouched photos and ≥ 0.9 of planted odd groups of 1-25 (docs/defaults.md)",
          threshold="outlier_z", evidence=(("outlier_distance", "float"), ("outlier_z", "float"),
                                           ("outlier_appearance_z", "float")),
          view="outliers", gallery="neighbours", order=50),
    Check("similar_content", "similar content",
          "images a model sees as showing the same thing (with embeddings; off unless its "
          "threshold is set)", "semantic cosine ≥ {similar_content}",
          ".checks.similar:similar_content",
          why="off by default: the cosine that means the same content depends on the model "
              "(docs/defaults.md)", unit="group", space="semantic", threshold="similar_content",
          pairs=True, evidence=(("similar_group", "int"), ("similar_to", "id")),
          view="similar content", verdicts=("keep", "remove"), clears=False, gallery="group",
          group_column="similar_group", order=55),
]
_QUALITY = [  # name, title, what, rule, statistic column, statistic name
    ("blurry", "blurry images", "little fine detail", "sharpness < {blurry}", "sharpness",
     "sharpness"),
    ("dark", "dark images", "little light", "95th percentile luminance < {dark}", "lum_p95",
     "95th-percentile luminance"),
    ("bright", "bright images", "washed out", "5th percentile luminance > {bright}", "lum_p05",
     "5th-percentile luminance"),
    ("low_information", "low-information images", "nearly flat",
     "entropy < {low_information} bits", "entropy", "entropy (bits)"),
    ("odd_size", "odd sizes", "extreme aspect or size",
     "aspect > {odd_aspect} or area ×/÷ {odd_area_factor} vs median", "odd_size_stat",
     "size oddness"),
    ("grayscale", "grayscale images", "no colour", "channel difference < {grayscale}",
     "channel_diff", "channel difference"),
]
_BUILTIN += [
    Check(name, title, what, rule, f".checks.quality:{name}", threshold=name if name != "odd_size"
          else "odd_aspect", evidence=((column, "float"),), view=name.replace("_", " "),
          queue=name != "grayscale", statistic=(column, stat), why="docs/defaults.md",
          order=60 + i)
    for i, (name, title, what, rule, column, stat) in enumerate(_QUALITY)
]

_REGISTRY: dict[str, Check] = {c.name: c for c in _BUILTIN}


def register(check: Check) -> Check:
    """Add a check to the vocabulary (a check of the same name is replaced). Returns it."""
    _REGISTRY[check.name] = check
    return check


def unregister(name: str) -> None:
    """Remove a check added by :func:`register`; the built-in checks stay."""
    if any(c.name == name for c in _BUILTIN):
        raise ValueError(f"{name} is a built-in check")
    _REGISTRY.pop(name, None)


def checks() -> list[Check]:
    """Every check, in order."""
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


def check(name: str) -> Check:
    """The record of check ``name``; ValueError naming the known checks otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown check {name!r}; the checks are "
                         f"{', '.join(c.name for c in checks())}") from None


def names(*, unit: str | None = None, pairs: bool | None = None) -> tuple[str, ...]:
    """Names of the checks, in order; only those of ``unit`` / with ``pairs`` when given."""
    return tuple(c.name for c in checks()
                 if (unit is None or c.unit == unit) and (pairs is None or c.pairs == pairs))
