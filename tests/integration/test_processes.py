"""Children spawned by `gw` die with it, even when it is SIGKILLed and cannot clean up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.processes import alive

PARENT = """
import sys, threading, time
from emulator.processes import spawn
child = spawn([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
threading.Thread(target=time.sleep, args=(0.01,)).start()  # threads in the parent, as in gw
time.sleep(60)
"""


def test_a_sigkilled_parent_takes_its_children_along():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    # The parent-death signal is armed between fork and exec (by setpriv); a parent killed
    # inside that window (microseconds) is not noticed. Kill it once the child runs its own
    # program, i.e. once setpriv has exec'd.
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{child}/cmdline").read_bytes().startswith(sys.executable.encode()):
        assert time.monotonic() < deadline, "the child never exec'd"
        time.sleep(0.01)
    assert alive(child)
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
