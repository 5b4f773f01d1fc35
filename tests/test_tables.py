"""The scan's Arrow tables: built without pandas, and read back as pandas' own conversion
would give them."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa

import vislint
from vislint import tables


def test_columns_convert_like_pandas():
    cols = {
        "f32": np.array([0.5, np.nan, -1.0], np.float32),
        "f64": np.array([np.nan, 2.0, 3.0]),
        "i32": np.array([1, -2, 3], np.int32),
        "i64": np.array([2**40, 0, -1], np.int64),
        "flag": np.array([True, False, True]),
        "text": ["a", None, "ünïcödé ✓"],
        "ids": np.array(["x", "y", "z"], dtype=object),
        "none": [None, None, None],
    }
    ours = tables.table(cols)
    theirs = pa.Table.from_pandas(pd.DataFrame(cols), preserve_index=False)
    assert ours.schema.names == theirs.schema.names
    for name in cols:
        a, b = ours.column(name).type, theirs.column(name).type
        # pandas 3 stores text as large_string; both read back as the same str column
        assert a == b or (pa.types.is_string(a) and pa.types.is_large_string(b)), name
        assert ours.column(name).to_pylist() == theirs.column(name).to_pylist(), name
    assert ours.column("f32").null_count == 1  # NaN is a missing value, as pandas writes it
    pd.testing.assert_frame_equal(ours.to_pandas(), theirs.to_pandas())


def test_long_text_columns_get_64_bit_offsets(monkeypatch):
    monkeypatch.setattr(tables, "STRING_BYTES_MAX", 5)
    col = tables.column(["abc", None, "déf"])  # 7 bytes of UTF-8
    assert col.type == pa.large_string() and col.to_pylist() == ["abc", None, "déf"]
    assert tables.column(["ab", "c"]).type == pa.string()


def test_empty_columns():
    t = tables.table({"s": [], "f": np.zeros(0, np.float32), "b": np.zeros(0, bool)})
    assert t.num_rows == 0
    assert [str(x) for x in t.schema.types] == ["null", "float", "bool"]


def test_summary_is_the_same_from_arrow_and_from_pandas(demo_scan):
    res, _ = demo_scan
    arrow = res.summary_rows()  # a fresh scan's tables are Arrow tables
    frames = vislint.ScanResults(res.images.copy(), res.group_table.copy(), res.pair_table.copy(),
                                 res.info)
    assert frames.summary_rows() == arrow
    df = res.images
    by_pandas = df.loc[df["is_invalid"], "invalid_reason"].value_counts().to_dict()
    assert res.invalid_reasons() == by_pandas and sum(by_pandas.values()) >= 2
    assert len(res) == len(df)


def test_columns_read_back_without_pandas():
    cols = {
        "f32": np.array([0.5, np.nan, -1.0], np.float32),
        "i64": np.array([2**40, 0, -1], np.int64),
        "flag": np.array([True, False, True]),
        "text": ["a", None, "ünï"],
        "none": [None, None, None],
    }
    t = pa.concat_tables([tables.table(cols), tables.table(cols).slice(1, 2)])  # 2 chunks, an offset
    got = tables.Columns(t)
    want = t.to_pandas()
    assert len(got) == 5 and "flag" in got and "nope" not in got
    for name in ("f32", "i64", "flag"):
        assert got[name].dtype == want[name].dtype, name
        assert np.array_equal(got[name].astype(float), want[name].to_numpy(float), equal_nan=True)
    for name in ("text", "none"):  # pandas reads missing text as NaN or None; here always None
        assert got[name].dtype == object
        assert got[name].tolist() == [x if isinstance(x, str) else None for x in want[name]]
    # missing ints and bools read as NaN (float)
    holes = pa.table({"i": pa.array([1, None, 3]), "b": pa.array([True, None, False])})
    h = tables.Columns(holes)
    assert np.array_equal(h["i"], [1.0, np.nan, 3.0], equal_nan=True)
    assert np.array_equal(h["b"], [1.0, np.nan, 0.0], equal_nan=True)


def test_a_command_line_scan_and_its_report_never_import_pandas(demo_data, tmp_path):
    code = ("import sys\nfrom vislint.cli import main\n"
            f"code = main(['scan', {str(demo_data.root)!r}, '--out', {str(tmp_path)!r}, "
            "'--json'])\n"
            "print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS', file=sys.stderr)\n"
            "sys.exit(code)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "NO-PANDAS"
    printed = json.loads(r.stdout)
    assert (tmp_path / "report.html").is_file()
    saved = vislint.load(tmp_path)
    assert printed["images"] == len(saved.images)
    for row in saved.summary().itertuples():
        assert printed["checks"][row.check]["images"] == row.images
    # the tables written without pandas read back like any Parquet file
    assert saved.images["is_invalid"].dtype == bool
    assert saved.images["nearest_similarity"].dtype == np.float32
