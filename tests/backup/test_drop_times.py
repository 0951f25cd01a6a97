"""Drop-folder times: Unix seconds, whole or fractional, mean the same in JSON and in CSV."""

from __future__ import annotations

import pytest

from mspwatch.exporters.backup.folder import read_records

CSV_HEADER = "job_name,result,start_time,end_time\n"
WANT_TIME = "start_time: want ISO 8601 (2026-01-15T22:00:00Z) or Unix seconds"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "a.json",
            '[{"job_name": "x", "result": "success", "start_time": 1730000000.5, "end_time": 1730000060.25}]',
        ),
        (
            "a.jsonl",
            '{"job_name": "x", "result": "success", "start_time": 1730000000.5,'
            ' "end_time": "1730000060.25"}\n',
        ),
        ("a.csv", CSV_HEADER + "x,success,1730000000.5,1730000060.25\n"),
        ("a.csv", CSV_HEADER + "x,success, 1730000000.500 ,1730000060.25\n"),
    ],
)
def test_fractional_unix_seconds(name: str, text: str) -> None:
    runs, errors = read_records(name, text)
    assert errors == []
    assert [(r.job_name, r.start, r.end) for r in runs] == [("x", 1730000000.5, 1730000060.25)]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.csv", CSV_HEADER + "x,success,1730000000.5.1,\n"),
        ("a.csv", CSV_HEADER + "x,success,-1730000000.5,\n"),
        ("a.csv", CSV_HEADER + "x,success,inf,\n"),
        ("a.csv", CSV_HEADER + "x,success,nan,\n"),
        ("a.csv", CSV_HEADER + "x,success,1e9,\n"),
        ("a.csv", CSV_HEADER + "x,success,\u0661\u0667\u0663\u0660\u0660\u0660\u0660\u0660\u0660\u0660,\n"),
        ("a.csv", CSV_HEADER + "x,success," + "9" * 400 + ",\n"),
        ("a.json", '[{"job_name": "x", "result": "success", "start_time": Infinity}]'),
        ("a.json", '[{"job_name": "x", "result": "success", "start_time": NaN}]'),
        ("a.json", '[{"job_name": "x", "result": "success", "start_time": 1e300}]'),
    ],
)
def test_times_that_are_not_unix_seconds(name: str, text: str) -> None:
    runs, errors = read_records(name, text)
    assert runs == []
    assert [msg for _, msg in errors] == [WANT_TIME]
