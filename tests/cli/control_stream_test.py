#!/usr/bin/env python3
"""control_stream_test.py — a running process streams its trace to a descriptor handed over the
control socket (README.md, "Control protocol": start with stream=1 and SCM_RIGHTS):

  stream       the stream begins with the preamble, events arrive while the program allocates,
               stop ends it with the footer and it reads with `heaptrail dump`; afterwards the
               process has exactly the descriptors and threads it had before
  refused      stream=1 without a descriptor, with output=, with a regular file, a terminal, a
               datagram or unconnected socket or a pipe's reading end, and descriptors sent
               with status, several at once or with a file start: each gets its answer and
               the process keeps no descriptor it was sent
  reader_gone  the reader closes its end (a socket; a pipe; a client killed with SIGKILL): the
               session ends by itself within 2 s (status ended=consumer_gone), no descriptor
               and no thread stay, the program never sees SIGPIPE and prints nothing, and a new
               start works
  slow_reader  discard mode: a reader that does not read costs the program no time, and the
               LOST records account for what was dropped; block mode: the program waits for
               the reader, and goes on once it reads
  client       ctl.h's ht_cli_stream_start / ht_cli_stream_stop (stream_client): a whole
               stream, the errors `heaptrail start` gives, a quiet stop once the session or the
               process is gone
Usage: the arguments of cli_test.py (whose helpers this uses), then one test name.
Exit status: 0 pass, 1 fail."""
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cli_test  # noqa: E402
import control_client  # noqa: E402
import control_waits_test  # noqa: E402
from cli_test import (Failure, Target, base_env, check, dump_rows, footprint,  # noqa: E402
                      heaptrail, raw_status, scratch, sizes_of, wait_for)

PREAMBLE = b"\x89HTRACE\n"
PATIENCE = 30  # far above the tracer's own bounds; a held program never ends


def args():
    return cli_test.ARGS


class Program(Target):
    """control_target under the preload library, its stderr kept, a SIGPIPE fatal to it."""

    def __init__(self, work, env_extra=None):
        env = base_env(work)
        env["LD_PRELOAD"] = args().preload
        if env_extra:
            env.update(env_extra)
        self.stderr_path = os.path.join(work, "target.%d.err" % time.monotonic_ns())
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen([args().bin["control_target"]], env=env, cwd=work,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=err)
        self.pid = self.process.pid
        self.command("churn 16 1")
        self.command("guard_sigpipe")

    def stderr(self):
        with open(self.stderr_path, "rb") as err:
            return err.read().decode(errors="replace")

    def quit(self):
        """Ends the program: it must leave with exit 0 and nothing on stderr."""
        control_waits_test.finish_within(self, PATIENCE)
        check(self.stderr() == "", "the program's stderr: %r" % self.stderr())


@contextlib.contextmanager
def program_in_scratch():
    """A scratch directory and a Program in it, which must end cleanly with the block."""
    work = scratch()
    target = None
    try:
        target = Program(work)
        yield work, target
        if target.process.returncode is None:
            target.quit()
    finally:
        if target:
            target.finish()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def closed_at_end():
    """A list whose files and sockets are closed when the block ends."""
    items = []
    try:
        yield items
    finally:
        for item in items:
            item.close()


def control_path(pid):
    return "/tmp/heaptrail-%d/%d.sock" % (os.geteuid(), pid)


def request(pid, text, fds=()):
    """Sends one request (with descriptors) and returns the reply's first line and its keys."""
    connection = control_client.connect(control_path(pid), pid)
    try:
        data = text.encode()
        if fds:
            socket.send_fds(connection, [data], list(fds))
        else:
            connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(PATIENCE)
        reply = b"".join(iter(lambda: connection.recv(65536), b""))
    finally:
        connection.close()
    lines = reply.decode().split("\n")
    return lines[0], dict(line.split("=", 1) for line in lines[1:] if "=" in line)


def start_stream(pid, options=(), kind="socket"):
    """stream=1 with a new socketpair (or pipe) end handed over: returns the reading end."""
    if kind == "socket":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reading, writing = ours.detach(), theirs.detach()
    else:
        reading, writing = os.pipe()
    text = "start\nstream=1\n" + "".join("%s\n" % o for o in options) + "\n"
    try:
        first, keys = request(pid, text, [writing])
    finally:
        os.close(writing)
    if first != "ok":
        os.close(reading)
        raise Failure("start stream=1: %s %s" % (first, keys))
    check(keys.get("output") == "stream", "the start reply's output: %s" % keys)
    return reading


class Reader:
    """Reads a stream as it comes into memory: for a while, or to its end in the background."""

    def __init__(self, fd):
        self.fd = fd
        self.data = b""
        self.thread = None
        self.error = None

    def background(self):
        """Reads on from now until the stream ends (join() waits for it)."""
        def run():
            try:
                self.read_to_end()
            except Failure as failure:
                self.error = failure
        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self):
        self.thread.join(PATIENCE + 5)
        if self.thread.is_alive() or self.error:
            raise self.error or Failure("the stream did not end")
        self.close()
        return self.data

    def read_for(self, seconds):
        """Reads what arrives within `seconds`; False once the stream ended."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and select.select(
                [self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            part = os.read(self.fd, 1 << 16)
            if not part:
                return False
            self.data += part
        return True

    def read_to_end(self, seconds=PATIENCE):
        deadline = time.monotonic() + seconds
        while self.read_for(min(1.0, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                raise Failure("the stream did not end within %d s" % seconds)
        return self.data

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def settled(pid, expected):
    """Waits (2 s at most) until the process's descriptors and threads are `expected` again."""
    return wait_for(lambda: footprint(pid) == expected, 2)


def trace_of(work, data, name):
    path = os.path.join(work, name)
    with open(path, "wb") as out:
        out.write(data)
    return path


def lost_in(rows):
    """The events the LOST records count (dump's CSV gives a LOST's Count as its Size)."""
    return sum(int(r["Size"]) for r in rows if r["event"] == "LOST")


# ---- the stream ---------------------------------------------------------------------------------

def test_stream():
    with program_in_scratch() as (work, target):
        target.command("alloc 1111 30")
        raw_status(str(target.pid))  # the listener exists now and lingers: let it end
        check(wait_for(lambda: footprint(target.pid)[1] == 1, 5), "the listener stayed")
        before = footprint(target.pid)
        reader = Reader(start_stream(target.pid, ["flush_ms=20"]))
        status = raw_status(str(target.pid))
        check(status["active"] == "1" and status["output"] == "stream", "status: %s" % status)
        human = heaptrail("status", target.pid, check_code=0).stdout.decode()
        check("streaming its trace to a client" in human, "status: %r" % human)
        reader.read_for(0.5)
        check(reader.data.startswith(PREAMBLE), "the stream begins with %r" % reader.data[:16])
        header = len(reader.data)
        target.command("churn 2222 500")
        reader.read_for(1.0)
        check(len(reader.data) > header, "no events arrived while the program allocated")
        reader.background()
        first, keys = request(target.pid, "stop\n\n")
        check(first == "ok" and keys.get("output") == "stream", "stop: %s %s" % (first, keys))
        trace = trace_of(work, reader.join(), "stream.trace")
        rows = dump_rows(trace)
        check(sizes_of(rows, "ALLOC").get(2222) == 500, "the stream's ALLOCs of 2222 bytes: %s" %
              sizes_of(rows, "ALLOC").get(2222))
        check(sizes_of(rows, "RUNDOWN_BLOCK").get(1111) == 30, "the rundown is in the stream")
        check(lost_in(rows) == 0 and keys.get("lost") == "0", "events lost: %s" % keys)
        stats = cli_test.stats_json(trace)
        check(stats["complete"], "the stream has no footer: %s" % stats)
        cli_test.trace_check(trace)
        check(settled(target.pid, before), "after the stop the process has %s, before %s" % (
            footprint(target.pid), before))
        status = raw_status(str(target.pid))
        check(status["active"] == "0" and status.get("ended") == "stop", "status: %s" % status)


# ---- refused hand-overs -------------------------------------------------------------------------

def test_refused():
    with program_in_scratch() as (work, target), closed_at_end() as opened:
        raw_status(str(target.pid))
        check(wait_for(lambda: footprint(target.pid)[1] == 1, 5), "the listener stayed")
        before_fds = footprint(target.pid)[0]

        def refused(text, fds, expected, output=None):
            first, keys = request(target.pid, text, fds)
            check(first == expected, "%r: %r, expected %r" % (text, first, expected))
            # Only the listener's socket (and a session's file) may be new: never a descriptor
            # that was sent. (A session's writer reads /proc/self/cmdline as it begins.)
            def extra():
                fds = list(footprint(target.pid)[0])
                for fd in before_fds + [output]:
                    if fd in fds:
                        fds.remove(fd)
                return fds
            check(wait_for(lambda: all(e.startswith("socket:") for e in extra()) and
                           len(extra()) <= 1, 2),
                  "%r left descriptors in the process: %s" % (text, extra()))

        refused("start\nstream=1\n\n", [], "error EINVAL stream=1 needs a descriptor")
        ours, theirs = socket.socketpair()
        opened += [ours, theirs]
        refused("start\nstream=1\noutput=%s\n\n" % os.path.join(work, "x.trace"),
                [theirs.fileno()], "error EINVAL output= and stream=1 exclude each other")
        refused("start\nstream=1\nfollow_forks=1\n\n", [theirs.fileno()],
                "error EINVAL follow_forks=1 needs output=: a stream carries one trace")
        refused("start\nstream=yes\n\n", [theirs.fileno()],
                'error EINVAL bad option stream="yes": not a flag (expected 0 or 1)')
        regular = open(os.path.join(work, "regular"), "wb")
        opened.append(regular)
        refused("start\nstream=1\n\n", [regular.fileno()],
                "error EINVAL the stream must be a pipe or a socket")
        null = open(os.devnull, "wb")
        opened.append(null)
        refused("start\nstream=1\n\n", [null.fileno()],
                "error EINVAL the stream must be a pipe or a socket")
        try:
            terminal, other = os.openpty()
            opened += [os.fdopen(terminal, "rb"), os.fdopen(other, "rb")]
            refused("start\nstream=1\n\n", [other],
                    "error EINVAL the stream must be a pipe or a socket")
        except OSError:
            pass  # no pseudo-terminals here
        datagram, datagram_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        unconnected = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        opened += [datagram, datagram_peer, unconnected]
        for sock in (datagram, unconnected):
            refused("start\nstream=1\n\n", [sock.fileno()],
                    "error EINVAL the stream must be a connected stream socket")
        pipe_read, pipe_write = os.pipe()
        opened += [os.fdopen(pipe_read, "rb"), os.fdopen(pipe_write, "wb")]
        refused("start\nstream=1\n\n", [pipe_read], "error EINVAL the stream is not open for "
                "writing")
        # Descriptors that no start takes: with status, with a start to a file (taken as the
        # output= start it is), several at once.
        first, keys = request(target.pid, "status\n\n", [theirs.fileno()])
        check(first == "ok" and keys["active"] == "0", "status with a descriptor: %s" % first)
        refused("status\n\n", [theirs.fileno(), pipe_write, regular.fileno()], "ok")
        trace = os.path.join(work, "file.trace")
        refused("start\noutput=%s\n\n" % trace, [theirs.fileno(), pipe_write], "ok", trace)
        refused("start\nstream=1\n\n", [theirs.fileno()],
                "error EBUSY a trace session is already running", trace)
        refused("stop\n\n", [pipe_write], "ok")
        check(cli_test.stats_json(trace)["complete"], "the file session's trace")
        check(wait_for(lambda: footprint(target.pid)[1] == 1 and
                       footprint(target.pid)[0] == before_fds, 5),
              "after the refusals: %s, before %s" % (footprint(target.pid), before_fds))


# ---- the reader goes away -----------------------------------------------------------------------

def reader_goes(target, before, go, what):
    """Starts a stream, lets the program allocate, then go(reading_end) takes the reader away:
    the session must end by itself within 2 s and leave nothing behind."""
    pid = str(target.pid)
    target.command("churn 64 2000")
    reading = go()
    gone_at = time.monotonic()
    target.command("churn 64 2000")  # the program goes on as if nothing happened
    ended = wait_for(lambda: raw_status(pid)["active"] == "0", 2)
    check(ended, "%s: still tracing %.1f s after the reader went away: %s" % (
        what, time.monotonic() - gone_at, raw_status(pid)))
    check(raw_status(pid).get("ended") == "consumer_gone", "%s: status %s" % (
        what, raw_status(pid)))
    # The status requests keep the listener for a second: its thread and socket go with it.
    check(wait_for(lambda: footprint(target.pid) == before, 5),
          "%s: the process kept %s, before %s" % (what, footprint(target.pid), before))
    if reading is not None:
        os.close(reading)
    target.command("churn 64 1000")
    check(target.process.poll() is None, "%s: the program ended" % what)
    first, keys = request(target.pid, "stop\n\n")
    check(first.startswith("error ENOENT "), "%s: stop after the end: %s" % (what, first))


def test_reader_gone():
    with program_in_scratch() as (work, target):
        pid = str(target.pid)
        raw_status(pid)
        check(wait_for(lambda: footprint(target.pid)[1] == 1, 5), "the listener stayed")
        before = footprint(target.pid)

        def close_socket():
            reading = start_stream(target.pid)
            os.read(reading, 8)
            os.close(reading)

        reader_goes(target, before, close_socket, "socket closed")

        def close_pipe():  # a pipe: a write without a reader raises SIGPIPE at the writer
            reading = start_stream(target.pid, kind="pipe")
            os.read(reading, 8)
            os.close(reading)

        reader_goes(target, before, close_pipe, "pipe closed")

        def close_idle():  # nothing is written for a minute: the writer's poll sees the end
            reading = start_stream(target.pid, ["mode=ring", "flush_ms=60000"])
            time.sleep(0.3)
            os.close(reading)

        reader_goes(target, before, close_idle, "idle ring session")

        def kill_holder():  # the reader is a process killed with SIGKILL
            reading = start_stream(target.pid, kind="pipe")
            holder = subprocess.Popen([sys.executable, "-c",
                                       "import os, sys, time\n"
                                       "while os.read(%d, 65536): pass\n" % reading],
                                      pass_fds=[reading])
            os.close(reading)
            time.sleep(0.3)
            holder.send_signal(signal.SIGKILL)
            holder.wait()

        reader_goes(target, before, kill_holder, "reader killed")

        def block_mode_full():  # block mode, a full stream, program threads waiting for room
            reading = start_stream(target.pid, ["mode=block", "buffer=64K"])
            target.process.stdin.write(b"churn 64 300000\n")
            target.process.stdin.flush()
            time.sleep(0.5)
            os.close(reading)
            answer = target.process.stdout.readline().decode().strip()
            check(answer == "ok", "block mode: %r" % answer)

        reader_goes(target, before, block_mode_full, "block mode, full stream")
        status = raw_status(pid)
        check(int(status["lost"]) > 0, "the events the dead stream could not take are not "
              "counted lost: %s" % status)
        # A new session starts as usual.
        reader = Reader(start_stream(target.pid))
        reader.background()
        target.command("churn 3333 10")
        first, keys = request(target.pid, "stop\n\n")
        check(first == "ok", "stop of the new session: %s" % first)
        rows = dump_rows(trace_of(work, reader.join(), "again.trace"))
        check(sizes_of(rows, "ALLOC").get(3333) == 10, "the new session's stream")


# ---- a slow reader ------------------------------------------------------------------------------

def churn_seconds(target, count):
    started = time.monotonic()
    target.command("churn 64 %d" % count)
    return time.monotonic() - started


def test_slow_reader():
    with program_in_scratch() as (work, target):
        pid = str(target.pid)
        # Discard: the reader sleeps while the program allocates far more than buffers and
        # socket hold; the program goes on at its own pace.
        count = 200000  # some MB of events: far more than the buffers and the socket hold
        untraced = churn_seconds(target, count)
        reader = Reader(start_stream(target.pid, ["mode=discard", "buffer=64K"]))
        took = churn_seconds(target, count)
        check(took < 10 * untraced + 5, "discard mode: the churn took %.2f s, untraced %.2f s" %
              (took, untraced))
        lost = int(raw_status(pid)["lost"])
        check(lost > 0, "nothing lost with a reader that does not read")
        reader.background()  # reading again: the rest comes
        time.sleep(0.5)  # the writer's backlog drains; the buffer has room again
        target.command("churn 4444 5")
        first, keys = request(target.pid, "stop\n\n")
        check(first == "ok", "stop: %s" % first)
        trace = trace_of(work, reader.join(), "discard.trace")
        recorded = lost_in(dump_rows(trace, "--event", "LOST"))
        check(recorded == int(keys["lost"]) and recorded >= lost,
              "LOST records in the stream %d, the stop's count %s" % (recorded, keys["lost"]))
        kinds = cli_test.stats_json(trace)["by_event"]
        allocs, frees = kinds["ALLOC"]["count"], kinds["FREE"]["count"]
        check(allocs + frees + recorded >= 2 * count,
              "%d ALLOC, %d FREE and %d lost for %d allocations and frees" % (
                  allocs, frees, recorded, 2 * count))
        late = dump_rows(trace, "--event", "ALLOC", "--min-size", "4444", "--max-size", "4444")
        check(len(late) == 5, "the events after the stall arrived: %d of 5" % len(late))
        # Block: the program waits while the reader sleeps, and goes on once it reads.
        reader = Reader(start_stream(target.pid, ["mode=block", "buffer=64K"]))
        target.process.stdin.write(b"churn 64 %d\n" % count)
        target.process.stdin.flush()
        ready, _, _ = select.select([target.process.stdout], [], [], 1.5)
        check(not ready, "block mode: the program did not wait for a reader that sleeps")
        reader.background()
        ready, _, _ = select.select([target.process.stdout], [], [], PATIENCE)
        check(ready, "block mode: the program still waits though the reader reads")
        answer = target.process.stdout.readline().decode().strip()
        check(answer == "ok", "block mode churn: %r" % answer)
        first, keys = request(target.pid, "stop\n\n")
        check(first == "ok" and keys["lost"] == "0", "block mode stop: %s %s" % (first, keys))
        kinds = cli_test.stats_json(trace_of(work, reader.join(), "block.trace"))["by_event"]
        check(kinds["ALLOC"]["count"] >= count and kinds["FREE"]["count"] >= count,
              "block mode: %s of %d each" % (kinds, count))


# ---- ctl.h ---------------------------------------------------------------------------------------

def stream_client(*arguments, env=None):
    return subprocess.Popen([args().bin["stream_client"]] + [str(a) for a in arguments],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def client_started(client):
    line = client.stdout.readline().decode()
    if not line.startswith("started "):
        out, err = client.communicate(timeout=PATIENCE)
        raise Failure("stream_client did not start: %r %r %r" % (line, out, err))
    return line.split()


def client_done(client, word):
    out, err = client.communicate(word.encode(), timeout=PATIENCE)
    return client.returncode, out.decode(), err.decode()


def test_client():
    with program_in_scratch() as (work, target):
        pid = str(target.pid)
        trace = os.path.join(work, "client.trace")
        # A whole stream with options, stopped through ht_cli_stream_stop.
        client = stream_client(pid, trace, "stacks=8", "flush_ms=20")
        words = client_started(client)
        check(words[1] == pid and words[2].startswith("cli_control_ta"), "started: %s" % words)
        status = raw_status(pid)
        check(status["output"] == "stream" and status["stacks"] == "8", "status: %s" % status)
        target.command("churn 5555 20")
        code, out, err = client_done(client, "stop\n")
        check(code == 0 and err == "" and out.startswith("ended "), "stop: %d %r %r" % (
            code, out, err))
        rows = dump_rows(trace)
        check(sizes_of(rows, "ALLOC").get(5555) == 20, "the client's stream")
        check(any(r["stack"] for r in rows if r["event"] == "ALLOC"), "no stacks")
        # The errors of heaptrail start, under the caller's name.
        check(raw_status(pid)["active"] == "0", "still tracing")
        heaptrail("start", "-o", os.path.join(work, "busy.trace"), pid, check_code=0)
        client = stream_client(pid, trace)
        code, out, err = client_done(client, "")
        check(code == 4 and re.fullmatch(
            r"heaptrail: stream: process %s \(\S+\): a trace session is already running\n"
            r"heaptrail: stream: the running session writes to %s\n" % (
                pid, re.escape(os.path.join(work, "busy.trace"))), err),
            "busy: %d %r" % (code, err))
        heaptrail("stop", pid, check_code=0)
        client = stream_client(cli_test.free_pid(), trace)
        code, out, err = client_done(client, "")
        check(code == 2 and re.fullmatch(r"heaptrail: stream: no process \d+\n", err),
              "no process: %d %r" % (code, err))
        plain = Target(work, preload=False)
        client = stream_client(plain.pid, trace)
        code, out, err = client_done(client, "")
        plain.finish()
        check(code == 2 and "has not loaded libheaptrail-preload.so" in err and
              err.count("\n") == 1, "no library: %d %r" % (code, err))
        client = stream_client(pid, trace, "mode=sometimes")
        code, out, err = client_done(client, "")
        check(code == 4 and 'bad option mode="sometimes"' in err, "bad key: %d %r" % (code, err))
        # A stop once the session ended by itself is quiet.
        client = stream_client(pid, trace)
        client_started(client)
        first, keys = request(target.pid, "stop\n\n")  # another client stops it
        check(first == "ok", "stop: %s" % first)
        code, out, err = client_done(client, "stop\n")
        check(code == 0 and err == "", "stop after the end: %d %r" % (code, err))
        # Closing the reading end: the session ends by itself.
        client = stream_client(pid, trace)
        client_started(client)
        code, out, err = client_done(client, "close\n")
        check(code == 0 and err == "", "close: %d %r" % (code, err))
        check(wait_for(lambda: raw_status(pid).get("ended") == "consumer_gone", 2),
              "after the close: %s" % raw_status(pid))
        # A stop once the process is gone is quiet too.
        client = stream_client(pid, trace)
        client_started(client)
        target.quit()
        code, out, err = client_done(client, "stop\n")
        check(code == 0 and err == "", "stop after the exit: %d %r" % (code, err))


TESTS = {name[5:]: function for name, function in globals().items()
         if name.startswith("test_") and callable(function)}


if __name__ == "__main__":
    sys.exit(cli_test.main(TESTS))
