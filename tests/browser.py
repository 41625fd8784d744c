#!/usr/bin/env python3
"""browser.py - what a person sees of an HTML file, from a real headless
Chromium driven through its DevTools protocol (over a pipe: no port, no
network).

usage: browser.py FILE [--count SELECTOR]... [--screenshot PNG] [--wait MS]

Prints one JSON object: the page's title, its text as rendered
(innerText: what is displayed, not what is hidden), the text of each
frame (a sandboxed frame runs in a process of its own, reached through
the target it is attached as), the number of elements each --count
SELECTOR matches, and whether anything marked the page as taken over
(window.pwned, or a data-pwned attribute anywhere). Exit 0, or 1 with
the reason on stderr.
"""
import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    """Chromium with --remote-debugging-pipe: NUL-terminated JSON messages,
    commands on its fd 3, replies and events on its fd 4."""

    def __init__(self, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Above 4 first, so that neither move overwrites the other.
            a = os.dup(to_chrome_r)
            b = os.dup(from_chrome_w)
            a2 = os.dup2(a, 100)
            b2 = os.dup2(b, 101)
            os.dup2(a2, 3)
            os.dup2(b2, 4)

        args = ["chromium", "--headless", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--user-data-dir=" + profile,
                "--remote-debugging-pipe", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child_fds,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def recv(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                raise SystemExit("browser.py: chromium did not answer in time")
            data = os.read(self.from_chrome, 1 << 16)
            if not data:
                raise SystemExit("browser.py: chromium closed its pipe")
            self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        want = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise SystemExit("browser.py: %s: %s" % (method, msg["error"]))
                return msg["result"]
            self.events.append(msg)

    def wait_event(self, method, session, timeout=30):
        deadline = time.monotonic() + timeout
        for i, msg in enumerate(self.events):
            if msg.get("method") == method and msg.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            msg = self.recv(deadline)
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
            self.events.append(msg)

    def evaluate(self, expression, session):
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise SystemExit("browser.py: %s: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--count", action="append", default=[])
    ap.add_argument("--screenshot")
    ap.add_argument("--wait", type=int, default=500)
    opts = ap.parse_args()
    if not shutil.which("chromium"):
        raise SystemExit("browser.py: no chromium on PATH")
    profile = tempfile.mkdtemp(prefix="orch-chromium-")
    b = Browser(profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        page = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.call("Page.enable", session=page)
        b.call("Runtime.enable", session=page)
        b.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False,
                                        "flatten": True}, session=page)
        b.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900,
                                                      "deviceScaleFactor": 1, "mobile": False},
               session=page)
        b.call("Page.navigate", {"url": "file://" + os.path.abspath(opts.file)}, session=page)
        b.wait_event("Page.loadEventFired", page)
        # Let the frames' scripts run, then read everything.
        time.sleep(opts.wait / 1000)
        out = {
            "title": b.evaluate("document.title", page),
            "text": b.evaluate("document.body.innerText", page),
            "pwned": b.evaluate("Boolean(window.pwned || document.querySelector('[data-pwned]'))",
                                page),
            "scripts": b.evaluate("document.scripts.length", page),
            "counts": {sel: b.evaluate("document.querySelectorAll(%s).length" % json.dumps(sel),
                                       page) for sel in opts.count},
            "frames": [],
        }
        b.call("Runtime.evaluate", {"expression": "0"}, page)  # drain pending events
        for msg in list(b.events):
            if msg.get("method") != "Target.attachedToTarget":
                continue
            info = msg["params"]["targetInfo"]
            if info["type"] != "iframe":
                continue
            session = msg["params"]["sessionId"]
            b.call("Runtime.runIfWaitingForDebugger", session=session)
            out["frames"].append({"url": info["url"],
                                  "text": b.evaluate("document.body ? document.body.innerText : ''",
                                                     session)})
        if not out["frames"]:
            # Frames in the page's own process: a world of ours in each.
            tree = b.call("Page.getFrameTree", session=page)["frameTree"]
            for child in tree.get("childFrames", []):
                frame = child["frame"]
                ctx = b.call("Page.createIsolatedWorld", {"frameId": frame["id"]},
                             session=page)["executionContextId"]
                res = b.call("Runtime.evaluate", {
                    "expression": "document.body ? document.body.innerText : ''",
                    "contextId": ctx, "returnByValue": True}, session=page)
                out["frames"].append({"url": frame.get("url", ""),
                                      "text": res["result"].get("value")})
        if opts.screenshot:
            import base64
            shot = b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                          session=page)
            with open(opts.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
