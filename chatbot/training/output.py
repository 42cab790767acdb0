"""Atomic model output: everything is written into a hidden folder beside the target, renamed at the end.

Ctrl-C, SIGTERM or an exception remove the partial folder; a SIGKILL leaves it behind under a
hidden name (never at the target), and the next run removes leftovers whose process is gone.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from pathlib import Path

from chatbot.procs import pid_alive

_PARTIAL = ".partial-"


class OutputExistsError(FileExistsError):
    """The target folder exists and --overwrite was not given."""


def remove_stale_partials(target: Path) -> list[Path]:
    """Leftovers of killed runs for this target (their pid is no longer running)."""
    removed = []
    for folder in target.parent.glob(f".{target.name}{_PARTIAL}*"):
        try:
            pid = int((folder / "pid").read_text().strip())
        except (OSError, ValueError):
            pid = -1
        if pid > 0 and pid_alive(pid) and pid != os.getpid():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class AtomicOutput:
    """with AtomicOutput(target) as out: train into out.work, save into out.model, then out.commit()."""

    def __init__(self, target: str | Path, overwrite: bool = False) -> None:
        self.target = Path(target).expanduser().resolve()
        self.overwrite = overwrite
        self.partial: Path | None = None
        self.committed = False
        self._old_sigterm = None

    @property
    def work(self) -> Path:
        assert self.partial is not None
        return self.partial / "work"

    @property
    def model(self) -> Path:
        assert self.partial is not None
        return self.partial / "model"

    def __enter__(self) -> "AtomicOutput":
        if self.target.exists() and not self.overwrite:
            raise OutputExistsError(f"{self.target} already exists; pass --overwrite to replace it when training succeeds")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.target)
        self.partial = self.target.parent / f".{self.target.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.partial.mkdir()
        (self.partial / "pid").write_text(str(os.getpid()))
        self.work.mkdir()
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a plain `kill`) becomes an exception, so __exit__ runs and cleans up.
            self._old_sigterm = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        return self

    def commit(self) -> Path:
        """Move the finished model folder to the target (replacing an old one only now)."""
        if not (self.model / "modules.json").exists() and not (self.model / "config.json").exists():
            raise RuntimeError(f"refusing to publish {self.model}: it is not a saved model folder")
        old = None
        if self.target.exists():
            old = self.partial / "previous"
            os.replace(self.target, old)
        os.replace(self.model, self.target)
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def __exit__(self, *exc) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
        if self.partial is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.partial)


def _raise_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt(f"terminated by signal {signum}")
