"""All FEEL built-in functions, by FEEL name (``BUILTINS``), and ``invoke``."""

from __future__ import annotations

from . import fn_convert, fn_list, fn_range, fn_text  # noqa: F401  (importing registers the functions)
from .registry import BUILTINS, MISSING, invoke

#: Names of the FEEL built-in types that contain spaces or keywords (merged into one name token).
TYPE_NAMES = ("date and time", "days and time duration", "years and months duration")


def builtin_names() -> list[str]:
    return sorted(BUILTINS)


__all__ = ["BUILTINS", "MISSING", "TYPE_NAMES", "builtin_names", "invoke"]
