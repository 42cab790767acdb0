"""How the command-line tools end on an error: one clear line on stderr and exit status 2, no traceback."""
from __future__ import annotations

import sys

EXIT_FATAL = 2


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message already says what to do (imported lazily: the model stack is heavy)."""
    from chatbot.encoder import ModelNotFoundError
    from chatbot.store import EncoderMismatchError, StoreUnavailableError
    from chatbot.store_claim import StoreInUseError

    return (EncoderMismatchError, ModelNotFoundError, StoreInUseError, StoreUnavailableError)


def fatal(message: str) -> int:
    print(f"오류 (error): {message}", file=sys.stderr)
    return EXIT_FATAL


def describe(exc: BaseException) -> str:
    """The message of an expected error as it is; anything else with its type, so a report can name it."""
    return str(exc) if isinstance(exc, expected_errors()) else f"{type(exc).__name__}: {exc}"
