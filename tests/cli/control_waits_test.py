#!/usr/bin/env python3
"""control_waits_test.py — the control socket and the tracer never hold a program that did not
ask for block mode: `heaptrail start -o FIFO` with nobody reading is refused at once (one line)
and the program still exits; a FIFO whose reader stalls lets the program exit (discard mode, and
block mode at exit), and what reached the FIFO reads up to its last whole chunk; a client that
sends its request a byte at a time does not keep `heaptrail status` waiting.
Usage: the arguments of cli_test.py (whose helpers this uses), then one test name.
Exit status: 0 pass, 1 fail."""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cli_test  # noqa: E402
import control_client  # noqa: E402
from cli_test import Failure, Target, check, heaptrail, raw_status, scratch  # noqa: E402

# Far above the tracer's own bounds (about a second, ten at most); a held program never ends.
PATIENCE = 30


def finish_within(target, seconds):
    """Asks control_target to quit; fails if it has not ended after `seconds`."""
    target.process.stdin.write(b"quit\n")
    target.process.stdin.flush()
    try:
        target.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        target.process.kill()
        target.process.wait()
        raise Failure("the program was still held %d s after it asked to exit" % seconds)
    check(target.process.returncode == 0, "control_target exit %d" % target.process.returncode)


def drain_fifo(fd, path):
    """Copies what is left in the FIFO (all writers gone) into path; returns its size."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    with open(path, "wb") as out:
        out.write(data)
    return len(data)


def test_fifo_without_reader():
    work = scratch()
    target = None
    try:
        fifo = os.path.join(work, "fifo")
        os.mkfifo(fifo, 0o600)
        target = Target(work)
        pid = str(target.pid)
        p = heaptrail("start", "-o", fifo, pid, timeout=PATIENCE)
        err = p.stderr.decode()
        check(p.returncode == 4, "start on a FIFO nobody reads: exit %d; %s" % (p.returncode, err))
        check(re.fullmatch(r"heaptrail: (start: )?process %s \(\S+\): cannot start tracing: "
                           r"nothing reads the FIFO \(open it for reading first\)\n" % pid, err),
              "the refusal is not the one line expected: %r" % err)
        check(raw_status(pid)["active"] == "0", "tracing after a refused start")
        target.command("churn 64 1000")
        finish_within(target, PATIENCE)
        target = None
    finally:
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


def stalled_reader(mode, churn, live=0):
    """A FIFO opened for reading and never read: start in `mode` (with `live` blocks for the
    rundown), churn, quit; what reached the FIFO must read up to its last whole chunk."""
    work = scratch()
    target = None
    reader = None
    try:
        fifo = os.path.join(work, "fifo")
        os.mkfifo(fifo, 0o600)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        target = Target(work)
        pid = str(target.pid)
        if live:
            target.command("alloc 48 %d" % live)
        # With live blocks, a small buffer: the rundown cannot fit in it and waits for the
        # writer, which waits on the FIFO; it gives up once the FIFO is stalled.
        buffer = ["--buffer", "64k"] if live else []
        heaptrail("start", "--mode", mode, *buffer, "-o", fifo, pid, check_code=0,
                  timeout=PATIENCE)
        target.command("churn 100 %d" % churn)
        status = raw_status(pid)  # answered while the writer waits on the FIFO
        check(status["active"] == "1" and status["mode"] == mode, "status: %s" % status)
        finish_within(target, PATIENCE)
        target = None
        copy = os.path.join(work, "copy.trace")
        check(drain_fifo(reader, copy) > 0, "nothing reached the FIFO")
        # What reached it reads without error up to its last whole chunk.
        p = heaptrail("stats", "--format", "json", copy, timeout=PATIENCE)
        check(p.returncode == 0, "the FIFO's trace does not read: %s" % p.stderr.decode())
    finally:
        if reader is not None:
            os.close(reader)
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


def test_fifo_stalled_reader():
    stalled_reader("discard", 200000, live=60000)  # a rundown larger than buffer and pipe
    stalled_reader("ring", 200000)
    stalled_reader("block", 2000)  # fits in the buffer: the wait is the exit's, bounded


def test_slow_client():
    work = scratch()
    target = None
    slow = None
    try:
        target = Target(work)
        pid = str(target.pid)
        path = "/tmp/heaptrail-%d/%s.sock" % (os.geteuid(), pid)
        slow = control_client.connect(path, target.pid)
        stop = threading.Event()

        def trickle():
            for byte in b"status":  # never the end of the request
                if stop.wait(1.0):
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    return

        thread = threading.Thread(target=trickle)
        thread.start()
        time.sleep(0.3)
        try:
            p = heaptrail("status", "--raw", pid, timeout=8)
        finally:
            stop.set()
            thread.join()
        check(p.returncode == 0, "status beside a slow client: %s" % p.stderr.decode())
        slow.settimeout(PATIENCE)
        reply = slow.recv(4096).decode()
        check(reply.startswith("error ETIMEDOUT "), "the slow client got %r" % reply)
        target.finish()
        target = None
    finally:
        if slow:
            slow.close()
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}


if __name__ == "__main__":
    sys.exit(cli_test.main(TESTS))
