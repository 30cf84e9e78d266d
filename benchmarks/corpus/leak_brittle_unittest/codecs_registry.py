"""Codecs registered at run time."""
CODECS = {}


def register(name, fn):
    CODECS[name] = fn


def encode(name, text):
    return CODECS[name](text)
