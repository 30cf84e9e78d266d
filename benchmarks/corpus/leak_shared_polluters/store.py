"""Process-wide state shared by the whole suite: a plugin registry and feature flags."""
PLUGINS = {}
FLAGS = {"mode": "safe", "retries": 3}


def register(name, plugin):
    PLUGINS[name] = plugin


def set_flag(name, value):
    FLAGS[name] = value
