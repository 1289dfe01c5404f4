import logging

import numpy as np

from imet.tanb import read_train_csv


def test_reads_ids_rows_and_duplicates_without_labels_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,attribute_ids\na,5 3\nb,\nc,3 3 9\n")
    labels = read_train_csv(path)
    assert labels.image_ids == ["a", "b", "c"]
    assert labels.ids.tolist() == [3, 5, 9]
    assert labels.matrix.toarray().tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]


def test_labels_csv_sets_columns_and_unknown_ids_are_skipped(tmp_path, caplog):
    (tmp_path / "labels.csv").write_text(
        "attribute_id,attribute_name\n9,tags::cat\n3,culture::x\n7,tags::never\n"
    )
    (tmp_path / "train.csv").write_text("id,attribute_ids\na,3 9 42\nb,9 x\n")
    with caplog.at_level(logging.WARNING):
        labels = read_train_csv(tmp_path / "train.csv", tmp_path / "labels.csv")
    assert labels.names == ["tags::cat", "culture::x", "tags::never"]
    assert labels.matrix.toarray().tolist() == [[1, 1, 0], [1, 0, 0]]
    assert any("42" in m and "skipped" in m for m in caplog.messages)
    assert any("not integers" in m for m in caplog.messages)
    assert labels.matrix.dtype == np.uint8
