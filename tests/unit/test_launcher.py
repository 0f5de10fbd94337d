"""The one process launcher: a real deadline, and a clear error when a child never gets ready."""

from __future__ import annotations

import sys

import pytest

from devtools.processes import ListeningProcess, ProcessStartError

SILENT_HANG = ["-c", "import time; time.sleep(600)"]


# The hang guard: before the fix, start() blocked in readline() until this killed the test.
@pytest.mark.timeout(30)
def test_a_child_that_prints_nothing_and_hangs_times_out() -> None:
    child = ListeningProcess(
        SILENT_HANG, {}, ready_line="READY", ready_timeout=0.5, program=[sys.executable]
    )
    with pytest.raises(ProcessStartError, match=r"printed no 'READY' line within 0\.5s"):
        child.start()
    assert not child.alive()


def test_a_child_that_exits_early_is_reported_with_its_stderr() -> None:
    crash = ["-c", "import sys; sys.stderr.write('boom on stderr'); sys.exit(3)"]
    child = ListeningProcess(
        crash, {}, ready_line="READY", ready_timeout=30, program=[sys.executable]
    )
    with pytest.raises(
        ProcessStartError, match=r"exited before it was ready \(exit code 3\)"
    ) as info:
        child.start()
    assert "boom on stderr" in str(info.value)


def test_the_target_is_what_the_ready_line_reports_after_other_lines() -> None:
    seen: list[str] = []

    class Child(ListeningProcess):
        def on_line(self, line: str) -> None:
            seen.append(line.strip())

    # signal.pause(), not input(): with stdin at EOF (as under CI) input() returns at once.
    program = "import signal; print('hello', flush=True); print('READY 127.0.0.1:1234', flush=True)"
    ready = ["-c", program + "; signal.pause()"]
    with Child(ready, {}, ready_line="READY", program=[sys.executable]) as child:
        assert child.target == "127.0.0.1:1234"
        assert child.alive()
    assert seen == ["hello"]
    assert not child.alive()


def test_a_running_child_is_not_started_twice_but_a_stopped_one_may_be() -> None:
    # `with X.start()` starts it, then __enter__ would start a second and orphan the first.
    ready = ["-c", "import signal; print('READY 127.0.0.1:1', flush=True); signal.pause()"]
    child = ListeningProcess(ready, {}, ready_line="READY", program=[sys.executable]).start()
    try:
        first = child.proc
        with pytest.raises(RuntimeError, match="running already"):
            child.start()
        assert child.proc is first and child.alive()
    finally:
        child.stop()
    assert not child.alive()
    with child:  # started again
        assert child.alive() and child.proc is not first
    assert not child.alive()
