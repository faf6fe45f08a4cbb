"""Where uploads, segment data and results live, behind one small protocol.

`open_storage(url)` picks the backend: `file:///abs/dir` (one host or a shared filesystem) or
`s3://bucket/prefix` (any S3-compatible store). Workers never assume a shared disk: every file
that crosses process boundaries goes through a `Storage`.
"""

from waterz.storage.base import Storage, open_storage

__all__ = ["Storage", "open_storage"]
