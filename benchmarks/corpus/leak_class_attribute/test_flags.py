import pytest

from flags import Flags, theme


@pytest.fixture
def flags():
    return Flags()


class TestToggle:
    def test_enable_dark_mode(self, flags):
        flags.enable("dark_mode")
        assert theme(flags) == "dark"

    def test_beta_off(self, flags):
        assert not flags.beta


class TestRendering:
    def test_default_theme_is_light(self, flags):
        assert theme(flags) == "light"

    def test_theme_of_dark(self):
        class Dark:
            dark_mode = True
        assert theme(Dark) == "dark"
