"""One output folder, one run: a run holds `OUTPUT_DIR/.softcot.lock` for its whole life, and a
second run into the same folder (or into a folder inside it) is refused at once, naming the holder.

    with output_lock("runs/x"):        # FolderInUse: "--output-dir runs/x is in use by pid 1234 on host h
        ...                            #   (softcot eval ..., since 18:40:02); wait for it or stop it"

The lock is the kernel's (`flock`, exclusive, non-blocking) on an open file descriptor, so it goes
with the process: a run killed by SIGKILL, OOM or a power cut leaves no stale lock, and the next run
takes the folder over (logging the dead run's pid, still written in the file). The file holds the
holder's pid, host, command and start time as one JSON line; a clean exit removes it.

- A run that created the folder and ends (refused by a later check, or failing) before writing
  anything into it removes it again: a mistake leaves no trace.
- Re-entrant within one process: holding a folder twice (or a folder inside one this process holds)
  is allowed; it is released when the outermost holder ends.
- A multi-process run (`accelerate launch`): only the main process (RANK 0) takes the lock; the
  others share it. Should the main process be refused, the launcher stops the others before any of
  them writes (they write only after the first collective).
- Network filesystems: Linux NFS (v3 with lockd, v4) maps flock onto locks the server keeps, so
  runs on two machines see each other; a machine that dies keeps its lock until the server's lease
  runs out (NFSv4: about 90 s). Mounted with `nolock` or `local_lock=flock`, locks are local to
  each machine: runs on two machines are not kept apart. A filesystem that cannot lock at all
  (some FUSE mounts) gives a warning, and the run goes on unprotected.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from softcot.errors import DiskFull, FolderInUse

LOCK_NAME = ".softcot.lock"
log = logging.getLogger("softcot")
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


@dataclass
class _Held:
    fd: int | None  # None: the filesystem could not lock (the run goes on unprotected)
    folder: Path
    created: Path | None = None  # the topmost folder the run created (None: it existed)
    count: int = 1


_held: dict[str, _Held] = {}  # real path of the folder -> this process's hold


def command_line() -> str:
    """This process's command, as the user typed it (`softcot eval ...`)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("softcot", "cli.py", "__main__.py"):
        argv = ["softcot", *argv[1:]]
    return shlex.join(argv)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _read_holder(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 65536, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def _alive(holder: dict) -> bool:
    """Whether the holder's process runs (only knowable on this host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def describe(holder: dict | None) -> str:
    if holder is None:
        return "another process (it has not written its name yet)"
    cmd = str(holder.get("command") or "?")
    cmd = cmd if len(cmd) <= 100 else cmd[:97] + "..."
    started = holder.get("started")
    if isinstance(started, (int, float)):
        t = time.localtime(started)
        since = time.strftime("%H:%M:%S" if t[:3] == time.localtime()[:3] else "%Y-%m-%d %H:%M:%S", t)
    else:
        since = "?"
    return f"pid {holder['pid']} on host {holder.get('host', '?')} ({cmd}, since {since})"


def _flock(fd: int, how: int) -> bool:
    """True when taken, False when another process holds it; OSError when the filesystem cannot lock."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _refuse(fd: int, shown: str, inside: Path | None, how: int, wait_s: float = 2.0) -> None:
    """Raise FolderInUse naming the live holder of `fd`'s lock, or return when it is free after all.
    Between a holder's lock and its name there is an instant (and a clean exit drops the file
    just before it unlocks): an unnamed holder, or one naming a dead pid, is asked again briefly."""
    deadline = time.monotonic() + wait_s
    while True:
        if _flock(fd, how):
            return
        holder = _read_holder(fd)
        if (holder is not None and _alive(holder)) or time.monotonic() > deadline:
            where = f" is inside {inside}, which" if inside is not None else ""
            raise FolderInUse(f"{shown}{where} is in use by {describe(holder)}; wait for it or stop it")
        time.sleep(0.05)


def _check_ancestors(real: Path, shown: str) -> None:
    """A folder inside another live run's folder (e.g. a demo's runs/demo/softcot/...) is refused."""
    for parent in real.parents:
        lock = parent / LOCK_NAME
        if str(parent) in _held or not lock.is_file():
            continue
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            continue
        try:
            rel = os.path.relpath(parent)
            _refuse(fd, shown, Path(parent if rel.startswith("..") else rel), fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:  # no locks on that filesystem: nothing to learn there
            pass
        finally:
            os.close(fd)


def _lock_file(folder: Path, shown: str) -> int:
    """An open descriptor of `folder`'s lock file, locked by this process, or FolderInUse. A run that
    created the folder and ended before writing anything removes it again (see release): a lock
    taken on a file no longer at its path is let go, and the path's file is locked instead."""
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _flock(fd, fcntl.LOCK_EX):
                _refuse(fd, shown, None, fcntl.LOCK_EX)
            try:
                st = os.stat(folder / LOCK_NAME)
                if (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                    return fd
            except FileNotFoundError:
                pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def acquire(folder: str | Path, flag: str = "--output-dir", command: str | None = None) -> str | None:
    """Hold `folder` (created if missing) for this process, or raise FolderInUse naming the live
    holder. Returns the key to `release` (None on a non-main process of a multi-process run)."""
    if not _is_main_process():
        return None
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key].count += 1
        return key
    _check_ancestors(Path(key), f"{flag} {folder}")
    created = None  # the topmost folder this run creates: removed again if the run leaves it empty
    for d in (folder, *folder.parents):
        if d.exists():
            break
        created = d
    try:
        fd = _lock_file(folder, f"{flag} {folder}")
    except OSError as e:
        if e.errno not in _UNSUPPORTED:
            raise
        log.warning("%s %s: this filesystem cannot lock files (%s); another run into the same folder would not be "
                    "refused", flag, folder, os.strerror(e.errno))
        _held[key] = _Held(None, folder)
        return key
    old = _read_holder(fd)
    if old is not None:  # a clean exit removes the file: this one was left by a killed run
        log.warning("%s %s: took over the lock of pid %s on host %s (no longer running; %s)", flag, folder,
                    old["pid"], old.get("host", "?"), str(old.get("command", "?"))[:100])
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or command_line(),
          "started": time.time(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode("utf-8"), 0)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(folder / LOCK_NAME, "free space and rerun the same command") from None
        raise
    _held[key] = _Held(fd, folder, created)
    return key


def release(key: str | None) -> None:
    """Let go of one hold. The last one removes the lock file while still holding it (a clean exit
    leaves no file, so a file found later was left by a killed run) and unlocks; a folder this run
    created and left empty is removed too (a failed run leaves no trace)."""
    held = _held.get(key) if key else None
    if held is None:
        return
    held.count -= 1
    if held.count > 0:
        return
    del _held[key]
    if held.fd is None:
        return
    try:
        os.unlink(held.folder / LOCK_NAME)  # a run waiting on this file finds it gone and locks the path's new one
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(held.fd, 0)  # no name left: no takeover to report next time
    with contextlib.suppress(OSError):
        fcntl.flock(held.fd, fcntl.LOCK_UN)  # also for a forked child still sharing the descriptor
    os.close(held.fd)
    d = held.folder
    while held.created is not None:
        try:
            d.rmdir()  # only when empty
        except OSError:
            break
        if d == held.created or d == d.parent:
            break
        d = d.parent


@contextlib.contextmanager
def output_lock(folder: str | Path, flag: str = "--output-dir", command: str | None = None):
    """Hold `folder` for the body (see module doc)."""
    key = acquire(folder, flag, command)
    try:
        yield
    finally:
        release(key)
