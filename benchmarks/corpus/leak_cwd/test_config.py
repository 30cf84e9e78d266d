import json


def test_reads_config(config_path):
    assert json.loads(config_path.read_text())["name"] == "corpus"


def test_config_path_is_relative(config_path):
    assert not config_path.is_absolute()
