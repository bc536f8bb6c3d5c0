"""The progress bar of every long loop: tqdm on a terminal, a few plain lines in a log file or a pipe."""

from tqdm import tqdm as terminal_tqdm

PLAIN_LINE_INTERVAL_S = 30.0


class tqdm(terminal_tqdm):
    """:class:`tqdm.tqdm` (same name, so call sites keep theirs), unchanged when its stream is a terminal.

    Elsewhere (``fastsnn demo > log``) it writes no carriage returns and no cursor moves: a plain line
    ``desc: 40%|####      | 40/100 [...]`` at most every :data:`PLAIN_LINE_INTERVAL_S` seconds, and one
    when it closes if the bar is kept (``leave``) or printed a line before. ``tqdm.write`` works as usual.
    """

    def __init__(self, *args, **kwargs):
        self._last_plain_line_t: float | None = None  # None until the bar writes its first plain line
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        """tqdm's in-place display on a terminal; elsewhere a plain line when one is due."""
        if _is_terminal(self.fp):
            return super().display(msg, pos)
        if not hasattr(self, "start_t"):  # tqdm's first display, from __init__: no line at the start
            return False
        closing = self.disable  # close() disables the bar before its last display
        kept = msg != ""  # close() of a transient bar (leave=False) displays "" to erase it
        now = self._time()
        if closing:
            due = kept or self._last_plain_line_t is not None
        else:
            last = self.start_t if self._last_plain_line_t is None else self._last_plain_line_t
            due = now - last >= PLAIN_LINE_INTERVAL_S
        if not due:
            return False
        # On closing a kept bar, tqdm ends the line itself.
        self.fp.write((msg or str(self)) + ("" if closing and kept else "\n"))
        self.fp.flush()
        self._last_plain_line_t = now
        return kept  # True after an erasure would make close() write a carriage return

    def clear(self, nolock=False):
        """Erase the bar on a terminal (``tqdm.write`` does, before writing); elsewhere nothing was drawn over."""
        if self.disable or _is_terminal(self.fp):
            super().clear(nolock)


def _is_terminal(stream) -> bool:
    """Whether ``stream`` is an open terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
