"""benchmarks/profile_top.py: py-spy's collapsed stacks summed by function."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("profile_top", ROOT / "benchmarks" / "profile_top.py")
profile_top = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_top)

RAW = """\
main (app.py:1);handle (app.py:5);query (db.py:9) 6
main (app.py:1);handle (app.py:5);encode (json.py:3) 3
main (app.py:1);walk (tree.py:2);walk (tree.py:2) 1

not a stack line
"""


def test_parse_reads_frames_outermost_first_and_skips_malformed_lines():
    stacks = profile_top.parse(RAW.splitlines(keepends=True))
    assert stacks[0] == (["main (app.py:1)", "handle (app.py:5)", "query (db.py:9)"], 6)
    assert [count for _, count in stacks] == [6, 3, 1]


def test_top_counts_inclusive_once_per_stack_and_self_at_the_innermost_frame():
    total, inclusive, own = profile_top.top(profile_top.parse(RAW.splitlines()))
    assert total == 10
    assert inclusive["main (app.py:1)"] == 10
    assert inclusive["handle (app.py:5)"] == 9
    assert inclusive["walk (tree.py:2)"] == 1  # recursion counts once
    assert own == {"query (db.py:9)": 6, "encode (json.py:3)": 3, "walk (tree.py:2)": 1}


def test_main_prints_shares_and_refuses_no_arguments(tmp_path, capsys):
    raw = tmp_path / "houses.raw"
    raw.write_text(RAW, encoding="utf-8")
    assert profile_top.main([str(raw), "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "10 samples"
    assert lines[2].split()[:2] == ["100.0", "0.0"] and lines[2].endswith("main (app.py:1)")
    assert lines[3].split()[:2] == ["90.0", "0.0"] and len(lines) == 4
    assert profile_top.main([]) == 2
