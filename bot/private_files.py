"""Files holding one person's data (exports), written owner-only from their first byte.

Writing the file and then chmod-ing it leaves a window in which anyone on the machine can open
it (and keep the descriptor), and an existing file keeps its old mode when truncated. So the
bytes go to a new file created 0600 (`O_EXCL | O_NOFOLLOW`: never an existing file, never
through a link), which then replaces the destination in one rename.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

OWNER_ONLY = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, mode 0600. A symbolic link at `path` is refused (OSError ELOOP),
    not followed: it could point at a file the caller never meant to overwrite."""
    if path.is_symlink():
        raise OSError(errno.ELOOP, "refusing to write through a symbolic link", str(path))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, OWNER_ONLY)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)  # a link planted since the check is replaced, not followed
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
