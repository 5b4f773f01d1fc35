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


def _strings(values) -> pa.Array:
    values = list(values)
    n = len(values)
    present = np.fromiter((v is not None for v in values), bool, n)
    if not present.any():
        return pa.nulls(n)
    encoded = [v.encode("utf-8") if v is not None else b"" for v in values]
    ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, n))
    large = n > 0 and ends[-1] > STRING_BYTES_MAX
    offsets = np.zeros(n + 1, np.int64 if large else np.int32)
    offsets[1:] = ends
    nulls = n - int(present.sum())
    validity = pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), n,
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
                                 null_count=nulls)
