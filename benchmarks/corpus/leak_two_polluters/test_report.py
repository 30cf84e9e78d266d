def test_first_request_is_number_one(counters):
    assert counters.incr("requests") == 1
