import logging

import audit


def test_silence_audit_in_batch_jobs():
    logging.getLogger("corpus.audit").propagate = False
    logging.getLogger("corpus.audit").addHandler(logging.NullHandler())
    audit.record("batch")


def test_logger_name():
    assert audit.log.name == "corpus.audit"
