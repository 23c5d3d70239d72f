#!/usr/bin/env python3
"""option_values.py — option values as a user meets them, through libheaptrail-preload.so.

  environment  every HEAPTRAIL_* variable the library reads, with bad values (negative, not a
               number, trailing characters, overflowing, empty, out of range, a path too long):
               the program runs as without heaptrail (same exit status) and stderr holds exactly
               one line naming heaptrail, the variable and the value, which says what was
               switched off; no trace file is created, no control socket appears.
  agreement    a table of values for buffer, sample, compress, stacks, mode and unwind given to
               `heaptrail record --OPTION=VALUE`, to the HEAPTRAIL_* variable, and to the control
               protocol's start request: all three give the same verdict, the expected one, and
               a refusal gives the same reason in all three (the words after "VALUE: ").

Usage: option_values.py environment|agreement --preload SO --heaptrail BIN --target BIN
Exit status: 0 pass, 1 fail. Standard library only.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import control_client  # noqa: E402

ARGS = None
EXIT = 3  # the target's own exit status


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def base_env():
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPTRAIL_")}
    env.pop("XDG_RUNTIME_DIR", None)
    env["LC_ALL"] = "C"
    return env


def private_dir(path):
    os.mkdir(path)
    os.chmod(path, 0o700)
    return path


def preload_env(work, extra):
    env = base_env()
    env["LD_PRELOAD"] = ARGS.preload
    env["HEAPTRAIL_CONTROL_DIR"] = os.path.join(work, "ctl")
    env.update(extra)
    return env


def run_target(env, cwd):
    p = subprocess.run([ARGS.target, "exit", str(EXIT)], env=env, cwd=cwd,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stderr.decode(errors="replace")


def shown(value):
    """The start of the value as the refusal line quotes it (plain characters only here)."""
    return value[:20]


def one_line(err, variable, value, consequence, what):
    lines = err.splitlines()
    check(len(lines) == 1 and err.endswith("\n"),
          "%s: expected one line on stderr, got %r" % (what, err))
    line = lines[0]
    check(line.startswith("heaptrail: "), "%s: line does not name heaptrail: %r" % (what, line))
    check('%s="%s' % (variable, shown(value)) in line,
          "%s: line does not name the variable and value: %r" % (what, line))
    check(consequence in line, "%s: line does not say %r: %r" % (what, consequence, line))


# ---- environment ------------------------------------------------------------------------------

COMMON_BAD = ["-1", "-5", "abc", "1x", "99999999999999999999", ""]
LONG_PATH = "/" + "p" * 5000

TRACING = {
    "HEAPTRAIL_MODE": COMMON_BAD + ["Block", "ring "],
    "HEAPTRAIL_BUFFER": COMMON_BAD + ["0", "64kb", "65535", "5G", "+1M", "0x100000"],
    "HEAPTRAIL_STACKS": COMMON_BAD + ["129", "1k"],
    "HEAPTRAIL_FREE_STACKS": COMMON_BAD + ["2", "yes"],
    "HEAPTRAIL_UNWIND": COMMON_BAD + ["FP"],
    "HEAPTRAIL_SAMPLE": COMMON_BAD + ["2G"],
    "HEAPTRAIL_EVENTS": COMMON_BAD + ["alloc,", "ALLOC"],
    "HEAPTRAIL_MIN_SIZE": COMMON_BAD,
    "HEAPTRAIL_MAX_SIZE": COMMON_BAD,
    "HEAPTRAIL_COMPRESS": COMMON_BAD + ["20", "22"],
    "HEAPTRAIL_FLUSH_MS": COMMON_BAD + ["0", "60001"],
    "HEAPTRAIL_FOLLOW_FORKS": COMMON_BAD + ["2", "yes"],
    "HEAPTRAIL_NO_RUNDOWN": COMMON_BAD + ["2", "yes"],
    "HEAPTRAIL_NO_TSC": COMMON_BAD + ["2"],
    "HEAPTRAIL_OWNER_PID": COMMON_BAD + ["0", "4194305"],
}
# Empty means "not set" for these two: nothing is asked, nothing is said.
DESTINATION = {
    "HEAPTRAIL_FD": ["-1", "-5", "abc", "1x", "99999999999999999999", "987"],
    "HEAPTRAIL_OUTPUT": [LONG_PATH],
}
CONTROL = {
    "HEAPTRAIL_CONTROL": COMMON_BAD + ["2", "no"],
    "HEAPTRAIL_CONTROL_DIR": COMMON_BAD + ["rel/dir", "/" + "d" * 100],
}


def traces_in(work):
    return [name for name in os.listdir(work) if name.endswith(".trace")]


def test_tracing_variable(work, variable, value):
    extra = {"HEAPTRAIL_OUTPUT": os.path.join(work, "t.%p.trace")}
    if variable == "HEAPTRAIL_FD":
        extra = {}
    extra[variable] = value
    code, err = run_target(preload_env(work, extra), work)
    what = '%s="%s"' % (variable, shown(value))
    check(code == EXIT, "%s: exit status %d, expected %d; stderr %r" % (what, code, EXIT, err))
    one_line(err, variable, value, "tracing not started", what)
    check(not traces_in(work), "%s: a trace was written: %s" % (what, traces_in(work)))


def test_control_variable(work, variable, value):
    control_dir = os.path.join(work, "ctl")
    extra = {variable: value}
    env = preload_env(work, extra)
    p = subprocess.Popen([ARGS.target, "wait"], env=env, cwd=work, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    what = '%s="%s"' % (variable, shown(value))
    try:
        ready = p.stdout.readline()
        check(ready == b"ready\n", "%s: the program did not start: %r" % (what, ready))
        # Wherever the socket could have gone: the given directory (absolute or relative to the
        # program's directory), the usual one, or the directory the test set up.
        places = [control_dir, "/tmp/heaptrail-%d" % os.geteuid()]
        if value:
            places.append(os.path.join(work, value[:200]))
        for place in places:
            check(not os.path.exists(os.path.join(place, "%d.sock" % p.pid)),
                  "%s: a control socket exists in %s" % (what, place))
    finally:
        _, err = p.communicate(timeout=30)
    err = err.decode(errors="replace")
    check(p.returncode == 0, "%s: exit status %d; stderr %r" % (what, p.returncode, err))
    one_line(err, variable, value, "control disabled", what)


def environment(work):
    private_dir(os.path.join(work, "ctl"))
    count = 0
    for table, test in ((TRACING, test_tracing_variable), (DESTINATION, test_tracing_variable),
                        (CONTROL, test_control_variable)):
        for variable, values in table.items():
            for value in values:
                test(work, variable, value)
                count += 1
    # Good values still trace, and quietly.
    code, err = run_target(preload_env(work, {"HEAPTRAIL_OUTPUT": os.path.join(work, "ok.trace"),
                                              "HEAPTRAIL_BUFFER": "64KiB",
                                              "HEAPTRAIL_OWNER_PID": str(os.getpid())}), work)
    check(code == EXIT and err == "", "good values: exit %d, stderr %r" % (code, err))
    return count


# ---- agreement --------------------------------------------------------------------------------

AGREEMENT = [
    # (command-line option, variable, control key, accepted, refused)
    ("buffer", "HEAPTRAIL_BUFFER", "buffer",
     ["64K", "64k", "64KiB", "1M", "1m", "1MiB", "2m", "65536"],
     ["64kb", "64KB", "64kib", "-5", "-1", "abc", "1x", "99999999999999999999", "", "0", " 64K",
      "+64K", "0x10000", "65535", "5G", "1.5M"]),
    ("sample", "HEAPTRAIL_SAMPLE", "sample",
     ["0", "4096", "4K", "1G"],
     ["-1", "-5", "abc", "1x", "99999999999999999999", "", "4kb", "2G"]),
    ("compress", "HEAPTRAIL_COMPRESS", "compress",
     ["0", "1", "19"],
     ["20", "22", "-1", "abc", "", "1k"]),
    ("stacks", "HEAPTRAIL_STACKS", "stacks",
     ["1", "8", "128"],
     ["129", "-1", "abc", "", "1k", "99999999999999999999"]),
    ("mode", "HEAPTRAIL_MODE", "mode",
     ["block", "discard", "ring"],
     ["Block", "abc", "", "-1"]),
    ("unwind", "HEAPTRAIL_UNWIND", "unwind",
     ["fp", "libunwind"],
     ["FP", "abc", ""]),
]


def env_verdict(work, variable, value):
    path = os.path.join(work, "env.trace")
    if os.path.exists(path):
        os.unlink(path)
    env = preload_env(work, {"HEAPTRAIL_OUTPUT": path, "HEAPTRAIL_CONTROL": "0", variable: value})
    code, err = run_target(env, work)
    what = 'environment %s="%s"' % (variable, value)
    check(code == EXIT, "%s: exit status %d; stderr %r" % (what, code, err))
    if os.path.exists(path):
        check(err == "", "%s: traced, but said %r" % (what, err))
        return True
    check(len(err.splitlines()) == 1, "%s: not traced, and said %r" % (what, err))
    m = re.search(r'^heaptrail: %s="[^"]*": (.*?); ' % re.escape(variable), err)
    check(m, "%s: the refusal %r does not have the form of the others" % (what, err))
    return m.group(1)


def cli_verdict(work, option, value):
    path = os.path.join(work, "cli.trace")
    env = base_env()
    env["HEAPTRAIL_PRELOAD"] = ARGS.preload
    env["HEAPTRAIL_CONTROL"] = "0"
    p = subprocess.run([ARGS.heaptrail, "record", "-q", "-o", path, "--%s=%s" % (option, value),
                        "--", ARGS.target, "exit", str(EXIT)],
                       env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode(errors="replace")
    what = "record --%s=%s" % (option, value)
    if p.returncode == EXIT:
        check(os.path.exists(path), "%s: ran, but no trace" % what)
        os.unlink(path)
        return True
    check(p.returncode == 1 and "bad value" in err,
          "%s: exit status %d; stderr %r" % (what, p.returncode, err))
    m = re.search(r"bad value '[^']*' for --%s: (.*)$" % re.escape(option), err.splitlines()[0])
    check(m, "%s: the refusal %r does not have the form of the others" % (what, err))
    return m.group(1)


class Target:
    """A program under the preload library, untraced, listening on its control socket."""

    def __init__(self, work):
        self.work = work
        env = preload_env(work, {})
        self.process = subprocess.Popen([ARGS.target, "wait"], env=env, cwd=work,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        check(self.process.stdout.readline() == b"ready\n", "the control target did not start")
        self.socket = os.path.join(work, "ctl", "%d.sock" % self.process.pid)

    def request(self, text):
        s = control_client.connect(self.socket, self.process.pid)
        s.settimeout(20)
        s.sendall(text.encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            reply += data
        s.close()
        return reply.decode(errors="replace")

    def close(self):
        _, err = self.process.communicate(timeout=30)
        return err.decode(errors="replace")


def control_verdict(target, key, value):
    path = os.path.join(target.work, "control.trace")
    reply = target.request("start\noutput=%s\n%s=%s\n\n" % (path, key, value))
    what = "control %s=%s" % (key, value)
    if reply.startswith("ok\n"):
        stop = target.request("stop\n\n")
        check(stop.startswith("ok\n"), "%s: stop answered %r" % (what, stop))
        return True
    check(reply.startswith("error EINVAL "), "%s: replied %r" % (what, reply))
    m = re.search(r'^error EINVAL .*?%s="[^"]*": (.*)$' % re.escape(key), reply.splitlines()[0])
    check(m, "%s: the refusal %r does not have the form of the others" % (what, reply))
    return m.group(1)


def agreement(work):
    private_dir(os.path.join(work, "ctl"))
    target = Target(work)
    count = 0
    try:
        for option, variable, key, accepted, refused in AGREEMENT:
            for value, expected in [(v, True) for v in accepted] + [(v, False) for v in refused]:
                verdicts = {"record": cli_verdict(work, option, value),
                            "environment": env_verdict(work, variable, value),
                            "control": control_verdict(target, key, value)}
                accepted_by = {k: v is True for k, v in verdicts.items()}
                check(set(accepted_by.values()) == {expected},
                      "%s=%r: expected %s, got %s" % (option, value,
                                                      "accepted" if expected else "refused",
                                                      verdicts))
                check(expected or len(set(verdicts.values())) == 1,
                      "%s=%r: refused for different reasons: %s" % (option, value, verdicts))
                count += 1
    finally:
        err = target.close()
    check(err == "", "the control target said %r" % err)
    return count


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["environment", "agreement"])
    parser.add_argument("--preload", required=True)
    parser.add_argument("--heaptrail", required=True)
    parser.add_argument("--target", required=True)
    ARGS = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ht-values-")
    try:
        count = {"environment": environment, "agreement": agreement}[ARGS.part](work)
        print("%s: %d cases passed" % (ARGS.part, count))
        return 0
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
