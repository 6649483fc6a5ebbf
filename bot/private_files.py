"""Files holding one person's data (exports), written owner-only from their first byte.

Writing the file and then chmod-ing it leaves a window in which anyone on the machine can open
it (and keep the descriptor), and an existing file keeps its old mode when truncated. So the
bytes go to a new file created 0600 (`O_EXCL | O_NOFOLLOW`: never an existing file, never
through a link), which then replaces the destination in one rename - or, when nothing may be
replaced, takes its name by a hard link, which fails if anything is there by then.
`destination` checks a path an operator typed before any data is read for it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

OWNER_ONLY = 0o600


class DestinationError(ValueError):
    """A path that cannot take the file; the message says why, naming the folder at fault."""


class DestinationExists(DestinationError):
    pass


def destination(out: str, *, replace: bool) -> Path:
    """The file `out` names, checked before anything is read or written: a folder (or a name
    ending in /) is no file name, a missing folder is named rather than created, and something
    already there is kept unless `replace`."""
    path = Path(out)
    if not out or out.endswith(("/", os.sep)) or path.is_dir():
        raise DestinationError(f"that is a folder: give a file name, e.g. {path / 'export.json'}")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise DestinationError(f"{blocking} is not a folder")
    if not path.parent.is_dir():
        raise DestinationError(f"the folder {path.parent} does not exist")
    if not replace and (path.exists() or path.is_symlink()):
        raise DestinationExists("it already exists")
    return path


def write_private(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write `data` to `path`, mode 0600. A symbolic link at `path` is refused (OSError ELOOP),
    not followed: it could point at a file the caller never meant to overwrite. Without
    `replace`, a file that appeared at `path` meanwhile is kept (FileExistsError)."""
    if path.is_symlink():
        raise OSError(errno.ELOOP, "refusing to write through a symbolic link", str(path))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, OWNER_ONLY)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temp, path)  # a link planted since the check is replaced, not followed
        else:
            os.link(temp, path)  # fails if anything is there by now: never clobbered
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
