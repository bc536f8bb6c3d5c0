"""Progress bars: tqdm itself on a terminal, a few plain lines (no carriage returns) in a log file."""

import io
import re
import time

import pytest
from tqdm import std as tqdm_std

from fastsnn.progress import PLAIN_LINE_INTERVAL_S, tqdm


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    """Advances by ``step`` seconds at each read, from the moment it was made on (so tqdm's monitor thread, on
    the real clock, never finds a bar overdue); ``reads`` lists the times read (cleared: it starts over)."""

    def __init__(self, step: float = 1.0):
        self.start, self.step, self.reads = time.time(), step, []

    def __call__(self) -> float:
        self.reads.append(self.reads[-1] + self.step if self.reads else self.start)
        return self.reads[-1]


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """tqdm's clock, replaced by a :class:`FakeClock` of 1 s steps."""
    fake = FakeClock()
    monkeypatch.setattr(tqdm_std, "time", fake)
    monkeypatch.setattr(tqdm_std.tqdm, "monitor_interval", 0)
    return fake


def elapsed_seconds(line: str) -> int:
    minutes, seconds = re.search(r"\[(\d+):(\d+)<", line).groups()
    return 60 * int(minutes) + int(seconds)


def test_off_a_terminal_a_long_run_prints_a_plain_line_every_interval_and_one_at_the_end(clock):
    stream = io.StringIO()
    for _ in tqdm(range(300), desc="work", file=stream):
        pass
    written = stream.getvalue()
    assert "\r" not in written and "\x1b" not in written
    lines = written.splitlines()
    duration = clock.reads[-1] - clock.reads[0]
    assert duration > 3 * PLAIN_LINE_INTERVAL_S, "the fake clock should make this a long run"
    assert 3 <= len(lines) <= duration / PLAIN_LINE_INTERVAL_S + 1
    assert all(line.startswith("work: ") for line in lines) and "300/300" in lines[-1]
    times = [elapsed_seconds(line) for line in lines[:-1]]
    assert all(later - earlier >= PLAIN_LINE_INTERVAL_S for earlier, later in zip([0, *times], times, strict=False))


def test_off_a_terminal_a_transient_bar_is_silent_when_short_and_ends_its_lines_when_long(clock):
    short, long = io.StringIO(), io.StringIO()
    for _ in tqdm(range(5), file=short, leave=False):
        pass
    for _ in tqdm(range(500), file=long, leave=False):
        pass
    assert short.getvalue() == ""
    lines = long.getvalue().splitlines(keepends=True)
    assert len(lines) >= 2 and all(line.endswith("\n") and "\r" not in line for line in lines)
    assert "500/500" in lines[-1] and "500/500" not in lines[-2]


def test_off_a_terminal_messages_written_during_a_bar_come_out_whole_without_redrawing_it(clock):
    clock.step = 0.01  # a short run: no line before the end
    stream = io.StringIO()
    bar = tqdm(range(10), desc="epoch", file=stream)
    for step in bar:
        bar.set_postfix(loss=step)  # forces a redraw on a terminal
        tqdm.write(f"message {step}", file=stream)
    *messages, last = stream.getvalue().splitlines()
    assert messages == [f"message {step}" for step in range(10)]
    assert last.startswith("epoch: 100%") and "loss=9" in last and "\r" not in stream.getvalue()


def test_on_a_terminal_it_draws_exactly_what_tqdm_draws(clock):
    drawn = {}
    for bar_class in (tqdm, tqdm_std.tqdm):
        clock.reads.clear()
        stream = FakeTerminal()
        bar = bar_class(range(300), desc="work", file=stream, leave=False, mininterval=5)
        for step in bar:
            if step % 100 == 0:
                bar_class.write(f"message {step}", file=stream)
        for _ in bar_class(range(50), desc="kept", file=stream):
            pass
        drawn[bar_class] = stream.getvalue()
    assert drawn[tqdm] == drawn[tqdm_std.tqdm]
    assert drawn[tqdm].count("\r") > 10 and "message 200\n" in drawn[tqdm]
