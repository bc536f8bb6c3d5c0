"""Ctrl-C as a request to stop at the next safe point, instead of an exception at an arbitrary one."""

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_requests(enabled: bool = True) -> Iterator[Callable[[], bool]]:
    """Within the block, SIGINT only sets a flag; yields a function that tells whether it was set.

    The first Ctrl-C restores the previous handler, so a second one interrupts at once as usual.
    Outside the main thread (where signals cannot be handled) or when not ``enabled``, nothing is
    installed and the flag stays unset.
    """
    requested = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(_signum, _frame):
        requested.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
