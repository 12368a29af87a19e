"""Progress bars for long work (hull construction, training, sweeps).

Bars go to stderr through tqdm. They show by default when stderr is a terminal; set
``MATVAE_PROGRESS=1`` to force them (e.g. under papermill with ``--log-output``) or ``0`` to hide them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

PROGRESS_ENV = "MATVAE_PROGRESS"
T = TypeVar("T")


def progress_enabled(enabled: bool | None = None) -> bool:
    """Resolve the ``enabled`` argument: explicit value, else $MATVAE_PROGRESS, else stderr is a tty."""
    if enabled is not None:
        return bool(enabled)
    setting = os.environ.get(PROGRESS_ENV)
    if setting is not None:
        return setting.strip().lower() not in ("0", "false", "no", "off", "")
    return sys.stderr.isatty()


def progress_bar(iterable: Iterable[T], *, desc: str, enabled: bool | None = None, **kwargs) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar, drawn only when progress is enabled (see module docstring).

    The bar is returned even when hidden, so callers may use ``set_postfix`` unconditionally."""
    return tqdm(iterable, desc=desc, disable=not progress_enabled(enabled), dynamic_ncols=True, **kwargs)
