"""The update statement of each sample a FiftyOne scan writes, as BSON, built column by column.

Each sample gets one ``$set`` of the run's embedded document (every subfield, null where it
has no value, so that ``sample[key].x`` reads None rather than raising AttributeError), its tag
list (only where it changes) and ``last_modified_at``::

    {"q": {"_id": <sample id>},
     "u": {"$set": {<key>: {"_cls": ..., <subfield>: <value or null>, ...},
                    "last_modified_at": <now>, ["tags": [...]]}}}

Why the bytes are laid out here rather than by pymongo alone: pymongo encodes one dict per
document, and building ~50 Python values a sample and encoding them took 3-4 s of client CPU
per 100,000 samples, on two cores shared with the database, which itself needs 2-3 s for those
updates (docs/benchmarks/fiftyone-write.md). Statements of the same *shape* — which subfields
are null, the width of each integer, the byte length of each string — are the same bytes but
for their values. So for each shape pymongo encodes the first statement (the template), and the
values of the others are copied into copies of it column by column, at offsets computed from
the shape (a tag list counts as one value). Statements with a list value (a few in a hundred)
are encoded by pymongo from their dicts. The tests compare every statement with pymongo's
encoding of its dict.
"""
from __future__ import annotations

import functools

import bson
import fiftyone as fo
import numpy as np
import pandas as pd
from bson.raw_bson import RawBSONDocument

from vislint import vocabulary
from vislint.schema import REVIEW_COLUMNS

_NULL = -1
"""Width of a subfield with no value (BSON null: a type byte and the name, no value bytes)."""

_BY_DICT = -2
"""Width of a value whose statement pymongo encodes from its dict (a list, a string that is
not UTF-8-encodable)."""

_INT32 = 2**31
"""pymongo encodes a Python int below this as a 32-bit BSON int, else as a 64-bit one."""

_OID = slice(16, 28)
"""Where the sample's ObjectId sits in a statement: after the statement's length (4), ``q``'s
type and name (3), ``q``'s length (4) and ``_id``'s type and name (5)."""


class SampleUpdates:
    """The update statements of the scanned samples (see the module docstring).

    res: the scan's results (its ``images`` table); key: the run key (the field's name);
    rows: the scan row of each sample; sample_ids, oids: the samples' ids (str, ObjectId);
    old_tags: the samples' tag lists; previous_tags: the tags an earlier run with this key
    wrote (replaced); now: ``last_modified_at`` (a UTC datetime; the database keeps whole
    milliseconds).

    The result columns are kept as arrays; a batch's statements are made only when
    :meth:`encoded` is asked for them, in the writer threads, so this work overlaps the database
    applying the previous batch.
    """

    def __init__(self, res, key: str, rows: list[int], sample_ids: list[str], oids: list,
                 old_tags: list, previous_tags: list[str], now):
        df = res.images
        n = len(df)
        # vislint image id → the first sample id with that file
        sid_of_row = [None] * n
        for sid, r in zip(sample_ids, rows):
            if sid_of_row[r] is None:
                sid_of_row[r] = sid
        sid_of_id = dict(zip(df["id"].tolist(), sid_of_row))

        # subfield → its values by row: float (NaN = no value), bool, int (< 0 = no value) or
        # object (None = no value) arrays; first what FiftyOne itself stores in an embedded
        # document of this class (its "_cls")
        columns = {k: np.full(n, v, object)
                   for k, v in fo.DynamicEmbeddedDocument().to_dict().items()}
        convert = {
            "float": lambda c: df[c].to_numpy(np.float64),
            "int": lambda c: df[c].to_numpy(np.int64),
            "bool": lambda c: df[c].to_numpy(bool), "str": lambda c: _strings(df[c]),
            "id": lambda c: _each_nonempty(_strings(df[c]), sid_of_id.__getitem__),
            "ids": lambda c: _each_nonempty(_strings(df[c]),
                                            lambda x: [sid_of_id[p] for p in x.split(";")]),
            "labels": lambda c: _each_nonempty(_strings(df[c]), lambda x: x.split("|")),
        }
        checks = [c for c in vocabulary.checks() if c.flag in df.columns]
        for check in checks:
            if check.scored:
                columns[check.score] = df[check.score].to_numpy(np.float64)
            columns[check.flag] = df[check.flag].to_numpy(bool)
            columns.update((c, convert[kind](c)) for c, kind in check.evidence)
        if "duplicate_group" in columns:  # the member the keep policy keeps: no duplicate_of
            columns["is_representative"] = ((columns["duplicate_group"] >= 0)
                                            & np.equal(columns["duplicate_of"], None))
        columns.update((c, convert["str"](c)) for c in (*REVIEW_COLUMNS, "split"))
        self._names, self._columns = list(columns), list(columns.values())
        self._name_bytes = [len(name.encode()) for name in self._names]
        self._widths, self._utf8 = _widths(self._columns)
        # the tags each scanned file earns, as one of a few lists (a list a row would cost
        # the garbage collector more than making them)
        tagging = [c for c in checks if columns[c.flag].any()]
        self.tags = [f"{key}:{c.name}" for c in tagging]  # the tags used
        bits = np.zeros(n, np.int64)
        for b, check in enumerate(tagging):
            bits |= columns[check.flag].astype(np.int64) << b
        patterns, self._row_pattern = np.unique(bits, return_inverse=True)
        self._pattern_tags = [[t for b, t in enumerate(self.tags) if p >> b & 1]
                              for p in patterns.tolist()]
        self._previous = set(previous_tags)
        self._key, self._rows, self._now = key, np.asarray(rows, np.int64), now
        self._oids, self._old_tags = oids, old_tags
        self._oid_bytes = np.frombuffer(b"".join(o.binary for o in oids), np.uint8).reshape(-1, 12)
        # the subdocument's first element: after the fixed start of the statement (46 bytes:
        # lengths, types and names of the statement, q, _id and its value, u, $set) and the
        # key's type, name and the subdocument's length
        self._first_element = 46 + 1 + len(key.encode()) + 1 + 4

    def statements(self, start: int, stop: int) -> list[dict]:
        """The statements of samples ``start`` to ``stop - 1`` (positions in the scan's order)
        as dicts, as pymongo would take them."""
        positions = np.arange(start, stop)
        return self._dicts(positions, [self._tags(i) for i in positions.tolist()])

    def encoded(self, start: int, stop: int) -> list[RawBSONDocument]:
        """The statements of samples ``start`` to ``stop - 1``, encoded (byte for byte what
        pymongo makes of :meth:`statements`)."""
        positions = np.arange(start, stop)
        tags = [self._tags(i) for i in positions.tolist()]
        tag_arrays = [None if t is None else _string_array(tuple(t)) for t in tags]
        widths = self._widths[self._rows[positions]]
        by_dict = (widths == _BY_DICT).any(axis=1)
        out: list = [None] * len(positions)
        slow = np.flatnonzero(by_dict)
        statements = self._dicts(positions[slow], [tags[j] for j in slow])
        for j, statement in zip(slow.tolist(), statements):
            out[j] = RawBSONDocument(bson.encode(statement))
        fast = np.flatnonzero(~by_dict)
        if not len(fast):
            return out
        # the shape: each value's width, then the tag array's bytes (-1: tags unchanged);
        # grouped by their bytes in a dict (np.unique(axis=0) sorts them: ten times slower)
        shapes = np.column_stack([widths[fast], [-1 if tag_arrays[j] is None else
                                                 len(tag_arrays[j]) for j in fast.tolist()]])
        shapes = np.ascontiguousarray(shapes, np.int32)
        keys, step = shapes.tobytes(), shapes.shape[1] * 4
        groups: dict[bytes, list[int]] = {}
        for k, j in enumerate(fast.tolist()):
            groups.setdefault(keys[k * step:(k + 1) * step], []).append(j)
        members = [np.array(m) for m in groups.values()]
        shapes = [np.frombuffer(key, np.int32) for key in groups]
        templates = self._dicts(positions[[m[0] for m in members]], [tags[m[0]] for m in members])
        for shape, member, template in zip(shapes, members, templates):
            block = self._fill(positions[member], shape[:-1], bson.encode(template))
            if shape[-1] >= 0:  # the tag array, last in the statement but 3 closing NULs
                end = block.shape[1] - 3
                arrays = b"".join(tag_arrays[j] for j in member.tolist())
                block[:, end - shape[-1]:end] = np.frombuffer(arrays, np.uint8).reshape(
                    len(member), -1)
            data, size = block.tobytes(), block.shape[1]
            for k, slot in enumerate(member.tolist()):
                out[slot] = RawBSONDocument(data[k * size:(k + 1) * size])
        return out

    def _fill(self, positions: np.ndarray, widths: np.ndarray, template: bytes) -> np.ndarray:
        """The statements of the samples at ``positions``, all with these value ``widths``, as
        uint8[samples, bytes]: copies of ``template`` (the first one's encoding) with each
        sample's id and values (not its tags) put in."""
        block = np.tile(np.frombuffer(template, np.uint8), (len(positions), 1))
        if len(positions) == 1:
            return block
        block[:, _OID] = self._oid_bytes[positions]
        rows = self._rows[positions]
        at = self._first_element
        for column, name_bytes, width, utf8 in zip(self._columns, self._name_bytes,
                                                   widths.tolist(), self._utf8):
            at += 1 + name_bytes + 1  # type, name, NUL
            if width == _NULL:
                continue
            values = column[rows]
            if column.dtype.kind == "f":
                block[:, at:at + 8] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
            elif column.dtype.kind == "i":
                block[:, at:at + width] = (values.astype("<i4" if width == 4 else "<i8")
                                           .view(np.uint8).reshape(-1, width))
            elif column.dtype.kind == "b":
                block[:, at] = values
            else:  # a string: its length (with the NUL) and NUL are the template's
                block[:, at + 4:at + 4 + width] = np.frombuffer(
                    b"".join(utf8[rows].tolist()), np.uint8).reshape(-1, width)
                width += 5
            at += width
        return block

    def _dicts(self, positions: np.ndarray, tags: list) -> list[dict]:
        """The statements of the samples at ``positions`` as dicts; ``tags``: each one's new
        tag list, or None to leave its tags as they are."""
        rows = self._rows[positions]
        names, values = self._names, zip(*(_python_values(c[rows]) for c in self._columns))
        statements = []
        for i, row, new_tags in zip(positions.tolist(), values, tags):
            fields = {self._key: dict(zip(names, row)), "last_modified_at": self._now}
            if new_tags is not None:
                fields["tags"] = new_tags
            statements.append({"q": {"_id": self._oids[i]}, "u": {"$set": fields}})
        return statements

    def _tags(self, i: int) -> list[str] | None:
        """Sample ``i``'s new tag list (its tags but those of the earlier run, then the tags
        its file earns now), or None when it does not change."""
        old, previous = self._old_tags[i] or [], self._previous
        mine = self._pattern_tags[self._row_pattern[self._rows[i]]]
        if not mine and not (previous and any(t in previous for t in old)):
            return None
        return [t for t in old if t not in previous] + mine if previous else old + mine


@functools.lru_cache(maxsize=1024)
def _string_array(values: tuple[str, ...]) -> bytes:
    """The BSON array document of ``values`` (a sample's tag list; most samples share a few)."""
    return bson.encode({"tags": list(values)})[10:-1]  # less the document's length, the
    # element's type and name (4 + 1 + 5 bytes) and the document's closing NUL


def _strings(column) -> np.ndarray:
    """A string column as database values, an object array: missing (None/NaN/NA) → None."""
    return column.to_numpy(object, na_value=None)


def _each_nonempty(strings: np.ndarray, f) -> np.ndarray:
    """``f`` of each string that is not None or empty, None for the others (an object array)."""
    out = np.full(len(strings), None, object)
    for i in np.flatnonzero(np.not_equal(strings, None) & np.not_equal(strings, "")).tolist():
        out[i] = f(strings[i])
    return out


def _python_values(a: np.ndarray) -> list:
    """The values of a column of :class:`SampleUpdates` as Python objects, None where there is
    no value (NaN floats, negative ints)."""
    if a.dtype.kind in "fi":
        out = a.astype(object)
        out[np.isnan(a) if a.dtype.kind == "f" else a < 0] = None
        return out.tolist()
    return a.tolist()


def _widths(columns: list[np.ndarray]) -> tuple[np.ndarray, list]:
    """(int32[rows, columns]: the width of each value in its statement — bytes of a number,
    UTF-8 bytes of a string, :data:`_NULL` or :data:`_BY_DICT` —, the UTF-8 bytes of each
    object column's strings (an object array by row, None elsewhere))."""
    n = len(columns[0]) if columns else 0
    widths = np.empty((n, len(columns)), np.int32)
    utf8 = []
    for c, column in enumerate(columns):
        encoded = None
        if column.dtype.kind == "f":
            widths[:, c] = np.where(np.isnan(column), _NULL, 8)
        elif column.dtype.kind == "i":
            widths[:, c] = np.where(column < 0, _NULL, np.where(column < _INT32, 4, 8))
        elif column.dtype.kind == "b":
            widths[:, c] = 1
        else:
            widths[:, c], encoded = _string_widths(column)
        utf8.append(encoded)
    return widths, utf8


def _string_widths(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The widths (see :func:`_widths`) and UTF-8 bytes of an object column's values: each
    distinct string encoded once (most columns hold a few: a split, a reason)."""
    n = len(column)
    present = np.flatnonzero(np.not_equal(column, None))
    widths, encoded = np.full(n, _NULL, np.int32), np.full(n, None, object)
    if not len(present):
        return widths, encoded
    try:
        codes, uniques = pd.factorize(column[present])
    except TypeError:  # unhashable values: lists
        widths[present] = _BY_DICT
        return widths, encoded
    utf8 = np.full(len(uniques), None, object)
    for u, value in enumerate(uniques.tolist()):
        try:
            utf8[u] = value.encode() if isinstance(value, str) else None
        except UnicodeEncodeError:  # (pymongo refuses it too, with its own message)
            pass
    unique_widths = np.array([_BY_DICT if b is None else len(b) for b in utf8], np.int32)
    widths[present], encoded[present] = unique_widths[codes], utf8[codes]
    return widths, encoded
