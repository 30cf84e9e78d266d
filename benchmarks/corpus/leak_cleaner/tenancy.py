"""The current tenant, process-wide."""
CURRENT = {"tenant": None}


def switch(name):
    CURRENT["tenant"] = name


def reset():
    CURRENT["tenant"] = None
