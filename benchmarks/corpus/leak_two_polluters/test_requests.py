def test_get_counts_request(counters):
    counters.incr("requests")
    assert counters.COUNTERS["requests"] >= 1


def test_post_counts_request(counters):
    counters.incr("requests", 2)
    assert counters.COUNTERS["requests"] >= 2


def test_errors_counted_apart(counters):
    assert counters.incr("errors_" + "x") >= 1
