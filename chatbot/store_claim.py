"""Ownership of an embedded Chroma folder: one exclusive flock per folder, held by the process that
serves or ingests it (embedded Chroma is single-process; a second writer corrupts what the first reads)."""
from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chatbot.settings import StoreSettings

OWNER_FILE = ".faqbot-owner.lock"
__all__ = ["OWNER_FILE", "StoreInUseError", "claim_store", "claimed", "release_store"]


class StoreInUseError(RuntimeError):
    """Another process owns this embedded Chroma folder: embedded Chroma is single-process."""

    def __init__(self, folder: Path, owner: str) -> None:
        who = f"pid {owner}" if owner else "pid ?"
        super().__init__(
            f"내장 저장소 {folder} 는 다른 프로세스({who}, 실행 중인 챗봇 앱일 수 있습니다)가 사용 중입니다. "
            "내장 Chroma는 한 프로세스만 쓸 수 있으니 웹 페이지의 🛠 운영 탭에서 업로드하거나, Chroma 서버를 띄우고 "
            "FAQBOT_STORE__HOST 로 서버 모드를 쓰세요. "
            f"(The embedded store {folder} is owned by another process ({who}, probably the running app). "
            "Embedded Chroma is single-process: upload through the web page's operator tab (🛠 운영), or run a "
            "Chroma server and use server mode (FAQBOT_STORE__HOST).)"
        )
        self.folder, self.owner = folder, owner


_claims: dict[Path, int] = {}  # resolved folder → the descriptor holding its flock
_claims_lock = threading.Lock()


def claim_store(settings: StoreSettings) -> bool:
    """Make this process the owner of an embedded store folder, for as long as it lives.

    An exclusive non-blocking flock on `<folder>/.faqbot-owner.lock` (the kernel drops it when the
    process dies, even by SIGKILL). Re-entrant within a process. Returns True when this call took
    the claim, False when this process already held it or the store is a server (nothing to own).
    Raises StoreInUseError when another process holds it.
    """
    if settings.host:
        return False
    folder = settings.path.resolve()
    with _claims_lock:
        if folder in _claims:
            return False
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StoreInUseError(folder, owner) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _claims[folder] = fd
        return True


def release_store(settings: StoreSettings) -> None:
    """Give up this process's claim (the CLI when it is done; tests)."""
    if settings.host:
        return
    with _claims_lock:
        fd = _claims.pop(settings.path.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


@contextmanager
def claimed(settings: StoreSettings) -> Iterator[None]:
    """Own the store for a block (a CLI run); a claim this process already held is kept afterwards."""
    taken = claim_store(settings)
    try:
        yield
    finally:
        if taken:
            release_store(settings)
