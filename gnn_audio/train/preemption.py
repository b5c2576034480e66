"""Stopping a training run cleanly when asked to: ``SIGTERM`` (what SLURM, Kubernetes and
``torchrun`` send before they preempt or stop a job) and ``SIGINT`` (Ctrl-C).

Inside ``with StopSignals() as stop:`` the first such signal only sets a flag
(:attr:`StopSignals.requested`); the training loop looks at it between two optimiser steps,
saves the full training state there and stops (:class:`~gnn_audio.train.trainer.Trainer`,
exit status :data:`EXIT_STOPPED` from ``gnn-audio train``). A second Ctrl-C stops at once,
without saving, as ``KeyboardInterrupt``. Outside the block the previous handlers are back.

Signal handlers can only be set in the main thread; elsewhere (a trainer driven from a worker
thread) the block does nothing and the signals keep their usual effect.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Dict, Optional

__all__ = ["StopSignals", "EXIT_STOPPED"]

#: ``gnn-audio train``'s exit status when a signal stopped it after saving its state
#: (``EX_TEMPFAIL`` of ``sysexits.h``: a temporary failure, to be retried with ``--resume``)
EXIT_STOPPED = 75

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Turns the first ``SIGTERM`` / ``SIGINT`` into a request to stop at the next step
    boundary (see the module docstring).

    Args:
        notice: written to stderr when the first signal arrives (``{signal}`` is replaced by
            its name), e.g. what the program will do; ``None``: nothing.

    Attributes:
        requested: the name of the signal received (``"SIGTERM"``), ``None`` before one.
    """

    def __init__(self, notice: Optional[str] = None) -> None:
        self.requested: Optional[str] = None
        self._notice = notice
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without saving
        self.requested = signal.Signals(signum).name
        if self._notice is not None:  # os.write: a handler must not re-enter buffered I/O
            os.write(2, (self._notice.replace("{signal}", self.requested) + "\n").encode())

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __repr__(self) -> str:
        return f"StopSignals(requested={self.requested!r})"
