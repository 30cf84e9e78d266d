"""A plugin registry kept in a module global."""
REGISTERED = []


def register(name):
    REGISTERED.append(name)


def names():
    return list(REGISTERED)
