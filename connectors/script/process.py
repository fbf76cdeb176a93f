"""One run of a connector script: a child process that can never hang the host.

The child runs in its own process group (session, on POSIX) with stdin and stdout as
pipes. Its stdout is read line by line with a cap on each line, its stderr is drained
as it comes and only a tail is kept, and a watchdog kills the whole group once the
role's time-out has passed. What went wrong (time-out, crash, protocol violation) is
turned into the engine's errors by ``failure``; nothing else here raises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecmahost.connectors.exceptions import EcmahostError, PermanentError, TransientError
from ecmahost.connectors.secrets import scrub

__all__ = [
    "PASSED_THROUGH",
    "Command",
    "ProtocolError",
    "ScriptProcess",
    "host_environment",
]

_POSIX_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
_WINDOWS_PASSED = (
    *("PATH", "PATHEXT", "SYSTEMROOT", "WINDIR", "COMSPEC", "TEMP", "TMP"),
    *("USERPROFILE", "APPDATA", "LOCALAPPDATA"),
)
PASSED_THROUGH: tuple[str, ...] = _WINDOWS_PASSED if sys.platform == "win32" else _POSIX_PASSED
"""The host's environment variables a script inherits, when set: PATH to find its
interpreter, and what interpreters need to start (Python needs SYSTEMROOT on Windows,
pwsh needs a home folder, the locale variables pick the text encoding)."""

STDERR_TAIL_BYTES = 4096
"""How much of the end of a script's stderr is kept for error messages."""

KILL_GRACE_S = 5.0
"""After a kill, how long to wait for the pipes to close before giving up on them
(a grandchild that left the process group may still hold them)."""

_READ_CHUNK = 64 * 1024


class ProtocolError(Exception):
    """The script's output breaks the documented contract (the README, script connector)."""


@dataclass(frozen=True, slots=True)
class Command:
    """What to run for one role: the program and its arguments, or a shell line."""

    role: str
    argv: tuple[str, ...]
    shell: bool
    timeout_s: float
    label: str
    """How messages name it: the role and the command as configured."""


def host_environment() -> dict[str, str]:
    """The variables of ``PASSED_THROUGH`` that the host has.

    Reading the environment is the config loader's job everywhere else; here the
    values are not configuration but what a child process needs to start at all, and
    they are only handed on, never interpreted.
    """
    return {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}


class ScriptProcess:
    """A started script. Use ``async with``: leaving the block kills whatever is left."""

    def __init__(
        self, command: Command, env: Mapping[str, str], cwd: Path, max_line_bytes: int
    ) -> None:
        self.command = command
        self._env = dict(env)
        self._cwd = cwd
        self._max_line_bytes = max_line_bytes
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_tail = bytearray()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self._eof_timer: asyncio.TimerHandle | None = None
        self._started_at = 0.0
        self.timed_out = False
        self.killed_by_us = False
        self._hidden: tuple[str, ...] = ()

    async def __aenter__(self) -> ScriptProcess:
        await self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self) -> None:
        command = self.command
        try:
            if command.shell:
                self._process = await asyncio.create_subprocess_shell(
                    command.argv[0], **self._spawn_options()
                )
            else:
                self._process = await asyncio.create_subprocess_exec(
                    *command.argv, **self._spawn_options()
                )
        except OSError as exc:
            raise TransientError(f"{command.label}: cannot start: {exc.strerror or exc}") from exc
        self._started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(command.timeout_s, self._on_timeout)
        self._tasks.append(asyncio.create_task(self._drain_stderr()))

    def _spawn_options(self) -> dict[str, Any]:
        return {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "env": self._env,
            "cwd": self._cwd,
            # readline's buffer limit is the line cap: memory stays bounded by it.
            "limit": self._max_line_bytes,
            # Its own process group (a new session on POSIX): a time-out kills them all.
            "start_new_session": sys.platform != "win32",
            "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        }

    # -- talking to it --------------------------------------------------------

    def send(self, lines: Iterable[bytes]) -> None:
        """Write ``lines`` to the script's stdin in the background, then close it."""
        self._tasks.append(asyncio.create_task(self._write(lines)))

    async def _write(self, lines: Iterable[bytes]) -> None:
        stdin = self._running.stdin
        assert stdin is not None
        # A script may exit, or be killed, without reading all of its input: that is
        # its exit status's business, not an error of the writer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for line in lines:
                stdin.write(line)
                await stdin.drain()
            stdin.close()
            await stdin.wait_closed()

    async def lines(self) -> AsyncIterator[tuple[int, bytes]]:
        """The script's stdout, line by line with its number, without line ends.

        Raises ``ProtocolError`` for a line longer than the cap; the script is then
        killed, since what follows cannot be trusted either.
        """
        stdout = self._running.stdout
        assert stdout is not None
        number = 0
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # asyncio's "chunk exceeds the limit"
                self.kill()
                raise ProtocolError(
                    f"line {number + 1} is longer than {self._max_line_bytes} bytes"
                ) from None
            if not line:
                return
            number += 1
            yield number, line.rstrip(b"\r\n")

    async def wait(self) -> int:
        """Wait for the script to exit (its watchdog still applies); its exit status.

        Output that will not be read is discarded first: asyncio stops reading a pipe
        whose buffer is full, and would then never see it close.
        """
        process = self._running
        if process.stdout is not None:
            while await process.stdout.read(_READ_CHUNK):
                pass
        returncode = await _exit_status(process)
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self._finish_tasks()
        return returncode

    @property
    def at_eof(self) -> bool:
        """Whether all of stdout has been read (a violation there ends the output)."""
        stdout = self._running.stdout
        return stdout is None or stdout.at_eof()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started_at

    def hide(self, values: Iterable[str]) -> None:
        """Never show these values (the initial passwords an export hands the script)
        in what is said about the run: its stderr tail and a protocol violation."""
        self._hidden = tuple(sorted(_forms(values), key=len, reverse=True))

    def _shown(self, text: str) -> str:
        for value in self._hidden:
            text = text.replace(value, "***")
        return scrub(text)

    @property
    def stderr_tail(self) -> str:
        """The end of stderr, secrets redacted: it goes into logs and SCIM answers."""
        text = bytes(self._stderr_tail).decode("utf-8", "replace").strip()
        return self._shown(text[-STDERR_TAIL_BYTES:])

    # -- ending it ------------------------------------------------------------

    def kill(self) -> None:
        """Kill the script and everything in its process group (no-op once it exited)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        self.killed_by_us = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sys.platform == "win32":
                process.kill()  # without a job object, Windows kills only the script
            else:
                os.killpg(process.pid, signal.SIGKILL)
        if process.stdout is not None and self._eof_timer is None:
            # A grandchild that left the group could hold stdout open for ever: stop
            # waiting for its end-of-file after a grace period.
            loop = asyncio.get_running_loop()
            self._eof_timer = loop.call_later(KILL_GRACE_S, process.stdout.feed_eof)

    async def close(self) -> None:
        """Kill what is left, reap it, and stop the watchdog and helper tasks."""
        process = self._process
        if process is not None:
            self.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_GRACE_S):
                    await process.wait()
        for timer in (self._watchdog, self._eof_timer):
            if timer is not None:
                timer.cancel()
        for task in self._tasks:
            task.cancel()
        await self._finish_tasks()

    def failure(self, returncode: int, violation: str | None) -> EcmahostError | None:
        """What the run's end means for the caller, or None if it went well.

        A time-out or a crash is transient (the target may be down or slow, and the
        retry policy bounds the attempts); output that breaks the contract from a
        script that exited normally is permanent (the same input gives the same output).
        """
        label, tail = self.command.label, self.stderr_tail
        stderr = f"; stderr: {tail}" if tail else "; nothing on stderr"
        if self.timed_out:
            return TransientError(
                f"{label}: timed out after {self.command.timeout_s:g} s and was killed{stderr}"
            )
        if returncode != 0 and not self.killed_by_us:
            how = (
                f"was killed by signal {-returncode}"
                if returncode < 0
                else f"exited with code {returncode}"
            )
            return TransientError(f"{label}: {how}{stderr}")
        if violation is not None:
            # The violation may quote the script's output, which may hold a secret.
            return PermanentError(f"{label}: broke the protocol: {self._shown(violation)}{stderr}")
        return None

    # -- helpers --------------------------------------------------------------

    @property
    def _running(self) -> asyncio.subprocess.Process:
        assert self._process is not None, "use the process inside `async with`"
        return self._process

    def _on_timeout(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self.timed_out = True
            self.kill()

    async def _drain_stderr(self) -> None:
        stderr = self._running.stderr
        assert stderr is not None
        while chunk := await stderr.read(_READ_CHUNK):
            self._stderr_tail += chunk
            del self._stderr_tail[:-STDERR_TAIL_BYTES]

    async def _finish_tasks(self) -> None:
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(KILL_GRACE_S):
                    await task
        self._tasks.clear()


async def _exit_status(process: asyncio.subprocess.Process) -> int:
    """``process.wait()``, except that once the process has exited, its pipes get
    ``KILL_GRACE_S`` to close: a grandchild that left the group may hold them."""
    exited = asyncio.ensure_future(process.wait())
    try:
        while True:
            done, _ = await asyncio.wait({exited}, timeout=KILL_GRACE_S)
            if done:
                return exited.result()
            if process.returncode is not None:
                return process.returncode
    finally:
        exited.cancel()


def _forms(values: Iterable[str]) -> set[str]:
    """Each value as it is and as JSON or ``repr`` quote it."""
    forms: set[str] = set()
    for value in values:
        if value:
            forms |= {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
            forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return forms
