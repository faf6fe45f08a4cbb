"""Typed errors a user can cause. Each message is a sentence a person understands.

The CLI maps every `WaterzError` to exit status 2; the service (later) maps them to HTTP 4xx
or to a FAILURE state with the same sentence.
"""


class WaterzError(Exception):
    """Base of every error caused by the user's input or configuration."""


class InvalidVideo(WaterzError):
    """The input is missing, not a video, or a video we cannot process faithfully."""


class UnknownEngine(WaterzError):
    """A detector or inpainter name that is not registered."""


class InvalidBox(WaterzError):
    """A user-given box that is malformed or outside the frame."""


class WeightsMissing(WaterzError):
    """Model weights an engine needs are not present."""


class ConfigError(WaterzError):
    """A setting in the environment is missing or malformed."""


class JobNotFound(WaterzError):
    """No job has this id."""


class JobFailed(WaterzError):
    """A job cannot go on; the message says why."""


class UploadTooLarge(WaterzError):
    """An upload over MAX_UPLOAD_MB."""


class InvalidRequest(WaterzError):
    """A request that lacks something it needs or carries something malformed."""


class JobFinished(WaterzError):
    """An action on a job that has already ended."""


class FilesDeleted(WaterzError):
    """A job's files were deleted after RESULT_TTL_HOURS."""
