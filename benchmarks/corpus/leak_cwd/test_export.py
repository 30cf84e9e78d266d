import os


def test_export_into_tmp(tmp_path):
    os.chdir(tmp_path)
    (tmp_path / "out.csv").write_text("a,b\n")
    assert os.path.exists("out.csv")


def test_export_header():
    assert "a,b".split(",") == ["a", "b"]
