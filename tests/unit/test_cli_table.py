"""The CLI's tables, as a person reads them: left-aligned columns two spaces apart, wide
characters counted as the two columns a terminal gives them, an empty cell for a missing value."""

from __future__ import annotations

import pytest

from moorage.cli.output import table


def test_columns_line_up_two_spaces_apart(capsys: pytest.CaptureFixture[str]) -> None:
    table(["NAME", "SCOPE", "DRIVER"], [("a", "instance", "local"), ("longer-name", "grid", None)])
    assert capsys.readouterr().out.splitlines() == [
        "NAME         SCOPE     DRIVER",
        "a            instance  local",
        "longer-name  grid",
    ]


def test_wide_and_combining_characters_take_their_columns(capsys: pytest.CaptureFixture[str]) -> None:
    table(["LABEL", "N"], [("データ", 1), ("cafe\u0301", 2), ("x", 3)])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["LABEL   N", "データ  1", "cafe\u0301    2", "x       3"]


def test_a_table_with_no_rows_is_its_header(capsys: pytest.CaptureFixture[str]) -> None:
    table(["NAME", "STATUS"], [])
    assert capsys.readouterr().out == "NAME  STATUS\n"
