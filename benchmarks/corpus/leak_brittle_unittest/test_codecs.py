import unittest

import codecs_registry


class TestRegistration(unittest.TestCase):
    def test_register_upper(self):
        codecs_registry.register("upper", str.upper)
        self.assertIn("upper", codecs_registry.CODECS)


class TestEncoding(unittest.TestCase):
    def test_encode_upper(self):
        self.assertEqual(codecs_registry.encode("upper", "ab"), "AB")

    def test_unknown_codec_raises(self):
        with self.assertRaises(KeyError):
            codecs_registry.encode("nope", "x")
