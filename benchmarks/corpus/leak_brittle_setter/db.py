"""A database module that must be initialised once per process."""
CONN = None


def init(url="sqlite://"):
    global CONN
    CONN = {"url": url, "tables": {"users": []}}


def insert(table, row):
    if CONN is None:
        raise RuntimeError("database not initialised")
    CONN["tables"][table].append(row)
    return len(CONN["tables"][table])
