from pathlib import Path

import numpy as np
import pytest

from model.data import SplitSpec, load_images, read_labels, read_sets, split_of
from model.errors import DatasetError
from tests.helpers.model import datasets_dir


def write_labels(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "final_files").mkdir(exist_ok=True)
    (folder / "labels.csv").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "not a readable CSV"),
        ("file_name,age\na.jpg,3\n", "labels.csv:1: header: missing column(s) real_age"),
        ("file_name,real_age\n", "no rows"),
        ("file_name,real_age\na.jpg,3\nb.jpg,x\n", "labels.csv:3: real_age: 'x' is not a number"),
        ("file_name,real_age\na.jpg,-1\n", "labels.csv:2: real_age: -1 is outside 0..120"),
        ("file_name,real_age\n,4\n", "labels.csv:2: file_name: empty"),
        ("file_name,real_age\na.jpg,4\na.jpg,5\n", "labels.csv:3: file_name: 'a.jpg' repeated"),
    ],
)
def test_bad_labels_name_file_line_and_field(tmp_path, text, message):
    folder = write_labels(tmp_path / "set", text)
    with pytest.raises(DatasetError) as err:
        read_labels(folder)
    assert message in str(err.value)
    assert str(folder / "labels.csv") in str(err.value)


def test_missing_labels_file(tmp_path):
    with pytest.raises(DatasetError, match="labels.csv: not found"):
        read_labels(tmp_path)


def test_not_utf8(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "labels.csv").write_bytes(b"file_name,real_age\n\xff\xfe,3\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_labels(folder)


def test_split_is_deterministic_and_shared_across_folders():
    sets = read_sets([datasets_dir() / "faces200", datasets_dir() / "faces64"])
    assert sets["file_name"].is_unique
    assert sets.set_index("file_name")["source"].value_counts()["faces200"] == 8406
    shares = sets["split"].value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.15, abs=0.01)
    assert shares["val"] == pytest.approx(0.10, abs=0.01)
    again = read_sets([datasets_dir() / "faces64"])
    merged = sets.merge(again, on="file_name", suffixes=("", "_64"))
    assert (merged["split"] == merged["split_64"]).all()


@pytest.mark.parametrize("name", ["a.jpg", "10_0_0_20170110183726390.jpg.chip.jpg"])
def test_split_of_depends_on_name_only(name):
    assert split_of(name) == split_of(name)
    assert split_of(name, SplitSpec(test=1.0, val=0.0)) == "test"
    assert split_of(name, SplitSpec(test=0.0, val=0.0)) == "train"


def test_unreadable_images_are_skipped_and_counted(tmp_path, faces_set):
    df = read_labels(faces_set).head(5).copy()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    df.loc[1, "path"] = str(broken)
    df.loc[3, "path"] = str(tmp_path / "missing.jpg")
    loaded = load_images(df, 48)
    assert loaded.images.shape == (3, 48, 48, 3)
    assert loaded.images.dtype == np.uint8
    assert loaded.skipped == [str(broken), str(tmp_path / "missing.jpg")]
    assert list(loaded.labels["file_name"]) == list(df["file_name"].iloc[[0, 2, 4]])


def test_all_unreadable_is_an_error(tmp_path, faces_set):
    df = read_labels(faces_set).head(2).copy()
    df["path"] = str(tmp_path / "nothing.jpg")
    with pytest.raises(DatasetError) as err:
        load_images(df, 32)
    assert str(err.value) == f"no readable image among 2 listed faces in {tmp_path}"


def test_a_set_without_its_images_folder_says_so(tmp_path):
    folder = write_labels(tmp_path / "set", "file_name,real_age\na.jpg,4\n")
    (folder / "final_files").rmdir()
    with pytest.raises(DatasetError) as err:
        load_images(read_labels(folder), 32)
    images = folder / "final_files"
    assert str(err.value) == (
        f"no readable image among 1 listed faces in {images} ({images}: no such folder)"
    )


def test_gender_and_race_out_of_range_are_not_known_and_said(tmp_path, caplog):
    text = "file_name,real_age,gender,race\na.jpg,4,,\nb.jpg,5,1,3\nc.jpg,6,M,1.5\nd.jpg,7,3,2\n"
    folder = write_labels(tmp_path / "set", text)
    with caplog.at_level("WARNING", logger="model.data"):
        df = read_labels(folder)
    assert df["gender"].isna().tolist() == [True, False, True, True]
    assert df["race"].isna().tolist() == [True, False, True, False]
    labels = folder / "labels.csv"
    assert caplog.messages == [
        f"{labels}: 2 gender value(s) not 0 or 1, read as not known (the first at line 4: 'M')",
        f"{labels}: 1 race value(s) not a whole number from 0, read as not known "
        "(the first at line 4: '1.5')",
    ]


def test_sets_labelled_by_age_and_by_group_are_not_mixed(tmp_path):
    ages = write_labels(tmp_path / "ages", "file_name,real_age\na.jpg,4\n")
    groups = write_labels(tmp_path / "groups", "file_name,age_group\nb.jpg,10-19\n")
    with pytest.raises(DatasetError) as err:
        read_sets([ages, groups])
    assert str(err.value) == (
        "groups: labelled by age group, the other sets by real_age; give sets of one kind"
    )
    assert len(read_sets([groups])) == 1


def test_explore_refuses_a_set_labelled_by_group(tmp_path):
    from model.explore import explore

    groups = write_labels(tmp_path / "groups", "file_name,age_group\nb.jpg,10-19\n")
    with pytest.raises(DatasetError, match="labelled by age group; explore needs real_age"):
        explore([groups], tmp_path / "out")
