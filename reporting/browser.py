"""Open a page in headless Chromium and report what a person would see: screenshot, images, errors.

Talks the Chrome DevTools Protocol over `--remote-debugging-pipe` (JSON messages ending in NUL
on file descriptors 3 and 4), so it needs only the standard library and Debian's `chromium`.
Console errors, uncaught exceptions and browser log errors (a blocked or failed load, a
Content-Security-Policy violation) are all collected.

    python -m flushcast.reporting.browser report.html docs/report.png
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)
IMAGES = (
    "JSON.stringify(Array.from(document.images, i => "
    "({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"
)


class BrowserError(RuntimeError):
    """Chromium is missing, crashed, or did not answer in time."""


@dataclass
class PageCheck:
    """What loading the page produced."""

    screenshot: bytes
    images: list[dict[str, Any]]
    """Per <img>: alt text, whether it finished loading, its natural size (0 if broken)."""
    errors: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and browser log errors, in arrival order."""
    width: int = 0
    height: int = 0
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for (documents, scripts, styles, images, fetches), in order."""

    @property
    def fetched(self) -> list[str]:
        """The requests that went over the network (`data:` URIs are inline content)."""
        return [url for url in self.requests if not url.startswith("data:")]

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not i["complete"] or i["width"] == 0]


def executable() -> str | None:
    """Path of the Chromium binary, or None if it is not installed."""
    return shutil.which(CHROMIUM)


class _Pipe:
    """One Chromium process and its DevTools pipe."""

    def __init__(self, binary: str, profile: Path, log: Path, timeout: float) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next = 0
        self._buffer = b""
        to_child = _high_pipe()
        from_child = _high_pipe()

        def wire() -> None:  # in the child, before exec: fd 3 reads commands, fd 4 answers
            os.dup2(to_child[0], 3)
            os.dup2(from_child[1], 4)

        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                close_fds=False,
                preexec_fn=wire,
                start_new_session=True,  # its helper processes can be ended with it
            )
        os.close(to_child[0])
        os.close(from_child[1])
        self._write, self._read = to_child[1], from_child[0]
        self._log = log

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its result (events arriving meanwhile are kept)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, since: int = 0) -> dict[str, Any]:
        """The first event named `method` among `events[since:]` or still to come."""
        for event in self.events[since:]:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read], [], [], max(left, 0))
            chunk = os.read(self._read, 1 << 20) if ready else b""
            if not chunk:
                tail = self._log.read_text(errors="replace")[-2000:]
                state = "timed out" if not ready else "closed the pipe"
                raise BrowserError(f"Chromium {state}; its log ends with:\n{tail}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above fd 4, so wiring them onto 3 and 4 cannot clobber them."""
    read, write = os.pipe()
    high = (
        fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10),
        fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10),
    )
    os.close(read)
    os.close(write)
    return high


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(f"uncaught: {details.get('exception', {}).get('description', details)}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            found.append(f"console.{params['type']}: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return found


def _ready(pipe: _Pipe, session: str, expression: str, timeout: float) -> None:
    """Wait until `expression` is truthy in the page (content drawn by its scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = pipe.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if result["result"].get("value"):
            return
        time.sleep(0.2)
    raise BrowserError(f"the page never showed {expression!r}")


def check_page(
    page: str | Path,
    *,
    width: int = 1280,
    timeout: float = 30.0,
    binary: str | None = None,
    ready: str | None = None,
) -> PageCheck:
    """Load `page` (a local HTML file, or an http URL) at `width` CSS pixels and capture the
    whole page, once the JavaScript expression `ready` (if given) holds."""
    binary = binary or executable()
    if binary is None:
        raise BrowserError(f"{CHROMIUM} not found: install it (Debian: apt-get install chromium)")
    text = str(page)
    url = text if text.startswith(("http://", "https://")) else Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="flushcast-chromium-") as tmp:
        pipe = _Pipe(binary, Path(tmp) / "profile", Path(tmp) / "chromium.log", timeout)
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            before = len(pipe.events)  # a late load event of about:blank must not count
            pipe.call("Page.navigate", session, url=url)
            pipe.wait_for("Page.loadEventFired", since=before)
            if ready:
                _ready(pipe, session, ready, timeout)
            images = json.loads(
                pipe.call("Runtime.evaluate", session, expression=IMAGES, returnByValue=True)[
                    "result"
                ]["value"]
            )
            size = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
            w, h = int(size["width"]), int(size["height"])
            shot = pipe.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": w, "height": h, "scale": 1},
            )["data"]
        finally:
            pipe.close()
    requested = [
        e["params"]["request"]["url"]
        for e in pipe.events[before:]
        if e.get("method") == "Network.requestWillBeSent"
    ]
    return PageCheck(base64.b64decode(shot), images, _errors(pipe.events), w, h, requested)


def _save_small(png: bytes, path: Path) -> None:
    """Save as a 256-colour PNG: a third of the size, and charts and text stay crisp."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)


def main(argv: list[str]) -> int:
    """`python -m flushcast.reporting.browser PAGE.html SHOT.png`: screenshot a page, fail on
    errors."""
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    check = check_page(argv[0])
    _save_small(check.screenshot, Path(argv[1]))
    for problem in check.errors + [f"image not loaded: {i}" for i in check.broken_images]:
        print(problem, file=sys.stderr)
    print(f"{argv[1]}: {check.width}×{check.height} px, {len(check.images)} images")
    return 1 if check.errors or check.broken_images else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
