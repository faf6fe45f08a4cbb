"""Secrets never reach a log line: the password part of any URL (between `user:` and `@`) and any
`api_key=` query value are masked in every record this process logs, whatever logger or handler
writes it."""

from __future__ import annotations

import logging
import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)", re.I)


_KEY_IN_QUERY = re.compile(r"(?P<head>[?&]api_key=)[^&\s\"']+", re.I)


def mask_secrets(text: str) -> str:
    """Each URL's password part (between `user:` and `@`) and `api_key=` query value replaced by `***`."""
    text = _PASSWORD_IN_URL.sub(lambda m: m["head"] + "***" + m["at"], text)
    return _KEY_IN_QUERY.sub(lambda m: m["head"] + "***", text)


class _MaskedRecord(logging.LogRecord):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # formatters that read the arguments themselves (uvicorn's access log) get them masked too
        if isinstance(self.args, tuple):
            self.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in self.args)

    def getMessage(self) -> str:  # noqa: N802 - logging's name
        return mask_secrets(super().getMessage())


def install_secret_masking() -> None:
    """Make every log record of this process mask URL passwords (idempotent)."""
    if logging.getLogRecordFactory() is not _MaskedRecord:
        logging.setLogRecordFactory(_MaskedRecord)
