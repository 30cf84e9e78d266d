"""Process-wide counters."""
COUNTERS = {}


def incr(name, by=1):
    COUNTERS[name] = COUNTERS.get(name, 0) + by
    return COUNTERS[name]
