"""CSV the product writes for people to open in Excel: uploaded text cannot become a formula."""
from __future__ import annotations

import csv
import io

import pytest

from chatbot.evaluation import Case, ModeReport, Outcome, write_failures
from chatbot.spreadsheet_safety import safe_cell, safe_csv_writer


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("＝1+1", "'＝1+1"),
    ("+82-10-1234-5678", "'+82-10-1234-5678"),
    ("배송은 얼마나 걸리나요?", "배송은 얼마나 걸리나요?"),
    ("a=b", "a=b"),
    ("", ""),
    ("-0.2500", "-0.2500"),  # a number written as text is still a number
    ("+3", "+3"),
    ("1e-5", "1e-5"),
    (-0.25, -0.25),
    (3, 3),
    (None, None),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_safe_csv_writer_round_trips_through_the_csv_module():
    buffer = io.StringIO()
    safe_csv_writer(buffer).writerows([["id", "score"], ["=HYPERLINK(\"http://x\")", -0.5]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["id", "score"], ["'=HYPERLINK(\"http://x\")", "-0.5"]]


def test_failures_csv_from_the_evaluation_neutralises_formulas(tmp_path):
    case = Case("=1+1", frozenset({"@SUM(A1)"}), "@SUM(A1)")
    wrong = Outcome(case, ("-2+3",), -0.25, "faq", "+cmd|' /C calc'!A0", 1.0)
    right = Outcome(Case("=ok", frozenset({"x"}), "x"), ("x",), 0.9, "faq", "x", 1.0)
    path = tmp_path / "failures.csv"
    assert write_failures([ModeReport("hybrid", [wrong, right], 0.5, 0.5, 1.0)], path) == 1
    with open(path, encoding="utf-8-sig", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["question"] == "'=1+1" and row["expected"] == "'@SUM(A1)"
    assert row["got"] == "'+cmd|' /C calc'!A0" and row["top1"] == "'-2+3"
    assert row["score"] == "-0.2500" and row["mode"] == "hybrid"
    assert not any(value.startswith(("=", "+", "-", "@")) and value != row["score"] for value in row.values())
