"""The daemon's private files: created for its user alone, and refused when others may read
them.

Everything secret the daemon keeps on disk (the store file, key files, PIN files) is created
with mode 0600 in directories of mode 0700. A secret it is given (a PIN or key file) must not
be open to others: a file of the daemon's own user must have no group or other permission
bits; a file owned by another user (root, say, sharing it through a group the daemon is in)
may be readable by its group, never by others — the rule PostgreSQL applies to its TLS key.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from devices.errors import BadRequest, Unreachable

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a directory (created with mode 0700 with its parents); a warning when it
    exists already and others may enter it."""
    if not path.exists():
        path.mkdir(parents=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
        return path
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("directory %s is open to group or others (mode %04o); authd keeps its "
                    "store and keys there: chmod 700 it", path, mode)
    return path


def create_private(path: Path, data: bytes = b"") -> None:
    """Create ``path`` with mode 0600 holding ``data``; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def tighten(path: Path) -> None:
    """Make an existing file of this user private (mode 0600), saying so."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, PRIVATE_FILE)
        log.warning("%s was open to group or others (mode %04o): made it 0600", path,
                    stat.S_IMODE(st.st_mode))


def open_to_others(st: os.stat_result) -> str:
    """Who besides its owner may read a secret file ('' when no one may)."""
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o007:
        return "others"
    if st.st_uid == os.geteuid() and mode & 0o070:
        return "its group"
    if mode & 0o020:  # another user's file: its group may read it, not change it
        return "its group (to write)"
    return ""


def read_secret(path: Path, what: str) -> bytes:
    """The bytes of a secret file, refused unless only its owner (and, for another user's
    file, its group) may read it. Errors name the file and what is wrong, never its content."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise Unreachable(f"{what} {path} is missing") from None
    except OSError as exc:
        raise BadRequest(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadRequest(f"{what} {path} is not a regular file")
    who = open_to_others(st)
    if who:
        raise BadRequest(
            f"{what} {path} is open to {who} (mode {stat.S_IMODE(st.st_mode):04o}): make "
            "it 0600, or 0640 and owned by another user whose group authd is in")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadRequest(f"{what} {path} cannot be read: {exc.strerror}") from None
