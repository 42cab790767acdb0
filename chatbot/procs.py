"""Process liveness, for cleaning up partial outputs that a killed run left behind."""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists (even one we may not signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
