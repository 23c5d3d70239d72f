#!/usr/bin/env python3
"""cdp.py: a small Chrome DevTools Protocol client for the browser tests, standard library only.

It starts `chromium --headless --remote-debugging-pipe` (the protocol over fds 3 and 4,
NUL-separated JSON messages), opens pages, collects what a page reports as an error (console
errors, uncaught exceptions, log entries of level error) and the URLs it requests, evaluates
JavaScript, sends real mouse events and takes screenshots. Every wait has a timeout, so a test
never hangs; a browser that does not answer is killed."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class CdpError(Exception):
    """The browser failed, answered with an error or did not answer in time."""


def find_chromium():
    """The browser's path, or None: $CHROMIUM, then the usual names."""
    candidates = [os.environ.get("CHROMIUM")] if os.environ.get("CHROMIUM") else []
    candidates += ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless browser; use as a context manager so it is always stopped."""

    def __init__(self, chromium=None, timeout=30.0, width=1280, height=900):
        self.chromium = chromium or find_chromium()
        if not self.chromium:
            raise CdpError("chromium not found")
        self.timeout = timeout
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="heaptrail-chromium-")
        self.next_id = 0
        self.buffer = b""
        self.events = []          # every event received, in order
        self.errors = []          # the page's errors, as text
        self.requests = []        # the URLs the page asked for (its own included)
        self.session = None
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        # Away from 3 and 4, which the child's redirections below overwrite.
        to_browser_read = _above(to_browser_read, 10)
        from_browser_write = _above(from_browser_write, 10)


        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                 "--user-data-dir=" + self.profile, "--remote-debugging-pipe",
                 "--window-size=%d,%d" % (width, height), "about:blank"]
        self.log = open(os.path.join(self.profile, "stderr.log"), "w+b")
        # The browser reads commands on fd 3 and writes answers on fd 4: a shell moves the
        # pipes there (subprocess keeps fds by number only; bash, as dash takes one digit).
        move = 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-' % (to_browser_read, from_browser_write,
                                                          to_browser_read, from_browser_write)
        self.process = subprocess.Popen(["bash", "-c", move, self.chromium] + flags,
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                        pass_fds=(to_browser_read, from_browser_write))
        os.close(to_browser_read)
        os.close(from_browser_write)

    # -- the wire --

    def _write(self, message):
        data = json.dumps(message).encode() + b"\0"
        deadline = time.monotonic() + self.timeout
        while data:
            left = max(0, deadline - time.monotonic())
            _, writable, _ = select.select([], [self.to_browser], [], left)
            if not writable:
                raise CdpError("the browser does not read its commands")
            data = data[os.write(self.to_browser, data):]

    def _read(self, deadline):
        """The next message, or None when the deadline passed."""
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self.from_browser], [], [], left)
            if not readable:
                return None
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise CdpError("the browser closed the pipe (exit status %s): %s"
                               % (self.process.poll(), self.stderr_tail()))
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, message):
        self.events.append(message)
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (params.get("type"), " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", []))))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append("exception: %s (line %s)" % (text, details.get("lineNumber")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append("log: %s %s" % (entry.get("text", ""), entry.get("url", "")))

    def send(self, method, params=None, session=True, timeout=None):
        """Sends a command (to the page's session unless session=False); returns its result."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._write(message)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._read(deadline)
            if answer is None:
                raise CdpError("no answer to %s in %.0f s" % (method, timeout or self.timeout))
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise CdpError("%s: %s" % (method, answer["error"].get("message")))
                return answer.get("result", {})
            if "method" in answer:
                self._event(answer)

    def wait_event(self, method, timeout=None):
        """Waits for an event (one already received counts); returns its parameters."""
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event.get("params", {})
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read(deadline)
            if message is None:
                raise CdpError("no %s in %.0f s" % (method, timeout or self.timeout))
            if "method" in message:
                self._event(message)
                if message["method"] == method:
                    self.events.remove(message)
                    return message.get("params", {})

    def pump(self, seconds=0.2):
        """Reads the events that arrive within seconds (errors logged late, for one)."""
        deadline = time.monotonic() + seconds
        while True:
            message = self._read(deadline)
            if message is None:
                return
            if "method" in message:
                self._event(message)

    # -- pages --

    def open(self, url):
        """Opens url in a new tab of the window's size and waits for its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.errors = []
        self.events = []
        self.requests = []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression (promises awaited); an exception raises."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError("evaluating %r: %s" % (expression[:80], details.get("exception", {}).get(
                "description") or details.get("text")))
        return result.get("result", {}).get("value")

    def mouse(self, kind, x, y, buttons=0, click_count=0):
        """One mouse event: kind is mousePressed, mouseReleased or mouseMoved."""
        params = {"type": kind, "x": x, "y": y, "modifiers": 0}
        if kind != "mouseMoved" or buttons:
            params["button"] = "left"
            params["buttons"] = buttons
        if click_count:
            params["clickCount"] = click_count
        self.send("Input.dispatchMouseEvent", params)

    def drag(self, x0, y0, x1, y1, steps=8):
        """Presses the left button at (x0, y0), moves in steps to (x1, y1) and releases it."""
        self.mouse("mouseMoved", x0, y0)
        self.mouse("mousePressed", x0, y0, buttons=1, click_count=1)
        for i in range(1, steps + 1):
            self.mouse("mouseMoved", x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps,
                       buttons=1)
        self.mouse("mouseReleased", x1, y1, buttons=0, click_count=1)

    def click(self, x, y, count=1):
        self.mouse("mouseMoved", x, y)
        for n in range(1, count + 1):
            self.mouse("mousePressed", x, y, buttons=1, click_count=n)
            self.mouse("mouseReleased", x, y, click_count=n)

    def screenshot(self, path, full_page=False):
        """Writes a PNG of the viewport (or of the whole page)."""
        params = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                              "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    # -- the end --

    def stderr_tail(self):
        try:
            self.log.flush()
            self.log.seek(0)
            return self.log.read().decode(errors="replace")[-2000:]
        except (OSError, ValueError):
            return ""

    def close(self):
        try:
            if self.process.poll() is None:
                try:
                    self.send("Browser.close", session=False, timeout=5)
                except (CdpError, OSError):
                    pass
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            for fd in (self.to_browser, self.from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False



def _above(fd, lowest):
    """fd moved to a number >= lowest (close-on-exec, as os.pipe made it)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved
