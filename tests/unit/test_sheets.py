"""Sheets: every error names the file, the line and what to do."""

from __future__ import annotations

import pytest

from conftest import write_table
from histodistill.errors import InputError
from histodistill.sheets import patient_slides, read_clinical, read_samples


def test_clinical_valid(tmp_path):
    sheet = write_table(tmp_path / "c.tsv", "patient|time|event|stage\nA|10.5|1|II\nB|3|0|I\n")
    df = read_clinical(sheet)
    assert list(df.index) == ["A", "B"] and df["event"].tolist() == [1, 0]
    assert "stage" in df.columns


@pytest.mark.parametrize("body, message", [
    ("patient|time\nA|1\n", "missing column"),
    ("patient|time|event\nA|1|1\nA|2|0\n", "unique.*lines \\[2, 3\\]"),
    ("patient|time|event\nA|1|2\n", "line 2 .*event must be"),
    ("patient|time|event\nA|0|1\n", "line 2 .*time must be > 0"),
    ("patient|time|event\nA|x|1\n", "line 2 .*not a number"),
    ("patient|time|event\nA b|1|1\n", "line 2.*letters, digits"),
])
def test_clinical_errors(tmp_path, body, message):
    path = write_table(tmp_path / "c.tsv", body)
    with pytest.raises(InputError, match=message) as err:
        read_clinical(path)
    assert str(path) in str(err.value)


def test_missing_sheet_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_clinical(tmp_path / "nope.tsv")


def test_samples_paths_relative_to_sheet_and_mpp(tmp_path):
    (tmp_path / "s1.svs").write_bytes(b"x")
    (tmp_path / "s2.svs").write_bytes(b"x")
    sheet = write_table(tmp_path / "s.tsv",
                        "patient|slide|path|mpp\nA|s1|s1.svs|0.25\nA|s2|s2.svs|\n")
    slides = read_samples(sheet, ["A"])
    assert slides["s1"].path == tmp_path / "s1.svs" and slides["s1"].mpp == 0.25
    assert slides["s2"].mpp is None
    assert patient_slides(slides) == {"A": ["s1", "s2"]}


@pytest.mark.parametrize("body, message", [
    ("patient|slide|path\nA|s1|s1.svs\nA|s1|s1.svs\n", "slide IDs must be unique"),
    ("patient|slide|path\nA|s1|missing.svs\n",
     "1 slide files do not exist.*line 2: slide 's1' file .*missing.svs.*exclude too"),
    ("patient|slide|path\nA|s1|a.svs\nA|s2|s1.svs\nA|s3|b.svs\n",
     "2 slide files do not exist.*line 2: slide 's1'.*a.svs; line 4: slide 's3'.*b.svs"),
    ("patient|slide|path\nZ|s1|s1.svs\n", "patients missing from the clinical sheet.*Z"),
    ("patient|slide|path|mpp\nA|s1|s1.svs|abc\n", "line 2: mpp 'abc'"),
    ("patient|slide|path\nA|s/1|s1.svs\n", "letters, digits"),
])
def test_samples_errors(tmp_path, body, message):
    (tmp_path / "s1.svs").write_bytes(b"x")
    with pytest.raises(InputError, match=message):
        read_samples(write_table(tmp_path / "s.tsv", body), ["A"])
