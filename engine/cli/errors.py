"""Runtime errors an operator can fix, as one line each instead of a traceback.

``explain`` turns the failures start-up meets in the field (a port in use, a state
folder that cannot be written) into an ``EcmahostError`` with a message naming what
to fix; ``main`` prints that one line and exits 2. Anything else stays a traceback:
it is a bug and the traceback is what a report needs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ecmahost.connectors.exceptions import EcmahostError
from ecmahost.engine.space.database import current_user

__all__ = ["RuntimeProblem", "address_in_use", "explain", "state_dir_error"]


class RuntimeProblem(EcmahostError):
    """The host cannot run here as things are (a resource is taken or unusable)."""


def address_in_use(address: str) -> RuntimeProblem:
    return RuntimeProblem(
        f"cannot listen on {address}: address already in use (another ecmahost or"
        " another program listens there); stop it or choose another port with --listen"
    )


def state_dir_error(state_dir: Path, exc: OSError) -> RuntimeProblem:
    """Why the state folder (or a file in it) cannot be created or written."""
    where = Path(exc.filename) if exc.filename else state_dir
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RuntimeProblem(
            f"state folder {state_dir}: {where} is not writable by user {current_user()};"
            " give that user write permission or set host.state_dir to a folder it owns"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return RuntimeProblem(
            f"state folder {state_dir}: {where} is a file, not a folder;"
            " move it away or set host.state_dir elsewhere"
        )
    return RuntimeProblem(f"state folder {state_dir}: {where}: {exc.strerror or exc}")


def explain(exc: BaseException, state_dir: Path | None = None) -> EcmahostError | None:
    """The one-line error for ``exc``, or None when it is not one we know."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return RuntimeProblem(f"cannot listen: address already in use ({exc.strerror})")
    if isinstance(exc, OSError) and state_dir is not None and _touches(exc.filename, state_dir):
        return state_dir_error(state_dir, exc)
    return None


def _touches(filename: object, state_dir: Path) -> bool:
    """Whether the failing path is the state folder, in it, or on the way to it; an
    error elsewhere is not the state folder's and keeps its traceback."""
    if not isinstance(filename, str | os.PathLike):
        return False
    failed, folder = Path(filename).absolute(), state_dir.absolute()
    return failed.is_relative_to(folder) or folder.is_relative_to(failed)
