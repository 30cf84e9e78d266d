"""A per-process upload quota."""
USED = {"bytes": 0}
LIMIT = 100


def upload(n):
    USED["bytes"] += n
    return USED["bytes"] <= LIMIT
