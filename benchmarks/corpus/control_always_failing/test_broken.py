def parse_version(text):
    return tuple(int(p) for p in text.split("."))


def test_parse_version_with_suffix():
    assert parse_version("1.2.3rc1") == (1, 2, 3)


def test_parse_plain_version():
    assert parse_version("1.2.3") == (1, 2, 3)


def test_compare_versions():
    assert parse_version("1.10") > parse_version("1.9")
