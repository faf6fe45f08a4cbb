"""Secrets never reach a log line: the password part of any URL (between `user:` and `@`) is masked
in every record this process logs, whatever logger or handler writes it."""

from __future__ import annotations

import logging
import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)", re.I)


def mask_secrets(text: str) -> str:
    """Each URL's password part (between `user:` and `@`) replaced by `***`."""
    return _PASSWORD_IN_URL.sub(lambda m: m["head"] + "***" + m["at"], text)


class _MaskedRecord(logging.LogRecord):
    def getMessage(self) -> str:  # noqa: N802 - logging's name
        return mask_secrets(super().getMessage())


def install_secret_masking() -> None:
    """Make every log record of this process mask URL passwords (idempotent)."""
    if logging.getLogRecordFactory() is not _MaskedRecord:
        logging.setLogRecordFactory(_MaskedRecord)
