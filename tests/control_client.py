"""The client side of heaptrail's control for tests that speak the protocol themselves: a
process under the preload library opens its socket only when its control signal asks
(trace.h, "Control"), so connect() signals it with sigqueue and the request value, then polls
for the socket as `heaptrail start|status` does."""
import ctypes
import signal
import socket
import time

COOKIE = 0x48540000  # HT_CONTROL_SIGNAL_COOKIE
DEFAULT_SIGNAL = signal.SIGRTMIN + 7  # SIGRTMIN + HT_CONTROL_SIGNAL_OFFSET

_libc = ctypes.CDLL(None, use_errno=True)
_libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def sigqueue(pid, signal_number, value):
    """sigqueue(2) with an integer value; raises OSError on failure."""
    if _libc.sigqueue(pid, signal_number, value) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "sigqueue: %s" % __import__("os").strerror(error))


def connect(path, pid, signal_number=DEFAULT_SIGNAL, timeout=5.0):
    """A socket connected to process pid's control socket at path."""
    deadline = time.monotonic() + timeout
    signalled = None
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError("process %d did not open %s" % (pid, path))
        if signalled is None or now - signalled >= 0.5:
            sigqueue(pid, signal_number, COOKIE)
            signalled = now
        time.sleep(0.01)
