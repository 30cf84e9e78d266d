from pathlib import Path

import pytest


@pytest.fixture
def config_path():
    return Path("data/config.json")
