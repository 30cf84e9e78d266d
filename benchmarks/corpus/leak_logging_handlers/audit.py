"""Audit logging on the 'corpus.audit' logger."""
import logging

log = logging.getLogger("corpus.audit")


def record(action):
    log.warning("audit: %s", action)
