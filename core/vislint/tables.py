"""Result tables as Arrow tables, built from NumPy arrays and lists without pandas.

A scan's tables are Arrow tables: Parquet is written from them directly, and
:class:`vislint.ScanResults` turns each into a pandas DataFrame only when it is first asked
for. Every pyarrow entry point that converts NumPy arrays or Python lists (``pa.array``,
``pa.table``, ``ChunkedArray.to_numpy``) imports pandas to check whether its input is a
pandas object, and importing pandas costs ~0.2 s of CPU, about a sixth of a 4,000-image
scan. So the columns are assembled here from their buffers (``pa.Array.from_buffers``),
which never touches pandas:

- bool, integer and float arrays: their NumPy buffer (floats: NaN becomes null, as pandas'
  own conversion does, so other Parquet readers see missing values as missing);
- sequences of ``str``/``None``: UTF-8 bytes and offsets (``large_string`` when the bytes
  pass 2 GiB); a column with no strings at all is of Arrow's null type.

:class:`Columns` reads them back the same way (``to_numpy`` imports pandas too), for the
HTML report of a command-line scan.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


STRING_BYTES_MAX = 2**31 - 1
"""Most UTF-8 bytes a ``string`` column holds (32-bit offsets); longer columns are ``large_string``."""


def column(values) -> pa.Array:
    """One Arrow column from a bool/int/float NumPy array or a sequence of str/None."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return _numeric(values)
    return _strings(values)


def table(columns: dict) -> pa.Table:
    """An Arrow table from {name: NumPy array or sequence of str/None}, columns in that order."""
    return pa.Table.from_arrays([column(v) for v in columns.values()], names=list(columns))


def _numeric(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values)
    n = len(values)
    if values.dtype.kind == "b":
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(np.packbits(values, bitorder="little"))])
    validity, nulls = None, 0
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        nulls = int(missing.sum())
        if nulls:
            validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n,
                                 [validity, pa.py_buffer(values)], null_count=nulls)


def utf8(values) -> tuple[np.ndarray, np.ndarray, bytes]:
    """A sequence of str/None as (present bool[n], offsets int64[n + 1], UTF-8 bytes): value i
    is bytes[offsets[i]:offsets[i + 1]] where present (an empty span where not) — the layout
    of an Arrow string column.
    A string that is no valid Unicode (a file name that is not UTF-8, as Python reads it) is
    written with ``\\xNN`` escapes (:func:`vislint.catalog.printable`)."""
    values = list(values)
    n = len(values)
    try:
        encoded = [v.encode("utf-8") if v is not None else b"" for v in values]
    except UnicodeEncodeError:
        from .catalog import printable

        encoded = [printable([v])[0].encode("utf-8") if v is not None else b"" for v in values]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, n), out=offsets[1:])
    return np.fromiter((v is not None for v in values), bool, n), offsets, b"".join(encoded)


def _strings(values) -> pa.Array:
    present, offsets, data = utf8(values)
    n = len(present)
    if not present.any():
        return pa.nulls(n)
    large = offsets[-1] > STRING_BYTES_MAX
    if not large:
        offsets = offsets.astype(np.int32)
    nulls = n - int(present.sum())
    validity = pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), n,
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=nulls)


class Columns:
    """Read-only access to the columns of a table — an Arrow table or a pandas DataFrame — as
    NumPy arrays, without pandas for an Arrow table: numbers and bools keep their dtype (an
    integer column with missing values becomes float with NaN; missing floats are NaN), text is
    an object array of str with None (a DataFrame's missing text may read as NaN: test with
    ``isinstance(v, str)``). Each column is converted once."""

    def __init__(self, table):
        self._table = table
        self._arrow = isinstance(table, pa.Table)
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self._table.num_rows if self._arrow else len(self._table)

    def __contains__(self, name: str) -> bool:
        return name in (self._table.column_names if self._arrow else self._table.columns)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            t = self._table
            self._cache[name] = _to_numpy(t.column(name)) if self._arrow else t[name].to_numpy()
        return self._cache[name]


def _to_numpy(chunked: pa.ChunkedArray) -> np.ndarray:
    parts = [_chunk_to_numpy(c) for c in chunked.chunks]
    if not parts:
        return np.zeros(0, _numpy_dtype(chunked.type) or object)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk_to_numpy(chunk: pa.Array) -> np.ndarray:
    n, at = len(chunk), chunk.offset
    dtype = _numpy_dtype(chunk.type)
    if dtype is None:  # text, null and anything else: Python objects
        return np.array(chunk.to_pylist() if n else [], dtype=object)
    validity, data = chunk.buffers()[:2]
    if dtype == np.bool_:
        values = _bits(data, at, n)
    else:
        values = np.frombuffer(data, dtype, count=n, offset=at * dtype.itemsize)
    if chunk.null_count:
        missing = ~_bits(validity, at, n)
        values = values.astype(np.float64 if dtype.kind in "biu" else dtype)
        values[missing] = np.nan
    return values


def _bits(buffer, at: int, n: int) -> np.ndarray:
    """bool[n] from an Arrow bitmap (least significant bit first), starting at bit ``at``."""
    return np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")[at:at + n].astype(bool)


def _numpy_dtype(t: pa.DataType) -> np.dtype | None:
    """The NumPy dtype of an Arrow bool, integer or float type; None for any other."""
    if pa.types.is_boolean(t):
        return np.dtype(np.bool_)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.dtype(t.to_pandas_dtype())
    return None
