import pytest

import db


@pytest.fixture
def database():
    return db


def test_init_database(database):
    database.init()
    assert database.CONN["url"] == "sqlite://"


def test_insert_user(database):
    assert database.insert("users", {"name": "ann"}) >= 1


def test_module_has_insert(database):
    assert callable(database.insert)
