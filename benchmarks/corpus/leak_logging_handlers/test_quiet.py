import logging

import audit


def test_silence_audit_in_batch_jobs():
    logging.getLogger("corpus.audit").setLevel(logging.ERROR)
    audit.record("batch")


def test_logger_name():
    assert audit.log.name == "corpus.audit"
