#!/usr/bin/env python3
"""FrameFlow's web app in Chromium (Playwright), against a running cluster.

Steps, each an assertion (see scripts/webtest): register (the password rule shown as one
types), the session survives a reload, two uploads at once reach COMPLETED without a reload
(server push), thumbnails load, the ZIP downloads with its frames, a third video is cancelled
mid-processing, a text file renamed .mp4 shows NOT_MEDIA, a file named like markup is shown
as text and runs no script, a second user sees none of the first user's videos or events, and
an operator drains a node and sees it drained. No page may log a Content-Security-Policy
violation (the page is served with default-src 'self').
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile

from playwright.sync_api import sync_playwright, expect

XSS_NAME = "<img src=x onerror=alert(1)>.mp4"
PASSWORD = "Webtest-2026!"


def make_video(path, seconds, size="320x240", rate=25):
    subprocess.run([
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p", path,
    ], check=True)
    with open(path, "rb") as f:
        return f.read()


def payload(name, data):
    return {"name": name, "mimeType": "video/mp4", "buffer": data}


class Page:
    """A browser context and page, with the checks every page gets: dialogs and CSP reports."""

    def __init__(self, browser, url, label):
        self.context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.label = label
        self.dialogs = []
        self.csp = []
        self.page.on("console", self._console)
        self.page.on("dialog", self._dialog)
        self.accept_confirms = False
        self.page.goto(url)

    def _console(self, msg):
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            self.csp.append(msg.text)

    def _dialog(self, dialog):
        self.dialogs.append((dialog.type, dialog.message))
        if dialog.type == "confirm" and self.accept_confirms:
            dialog.accept()
        else:
            dialog.dismiss()

    def check_clean(self):
        alerts = [d for d in self.dialogs if d[0] == "alert"]
        assert not alerts, f"{self.label}: a script ran alert(): {alerts}"
        assert not self.csp, f"{self.label}: CSP violations: {self.csp}"


def step(name):
    print(f"  - {name}", flush=True)


def register(p, email, screenshot=None):
    page = p.page
    page.goto(page.url.split("#")[0] + "#/register")
    page.fill("#register-form input[name=email]", email)
    page.fill("#register-form input[name=password]", "short")
    # The rule is shown and checked as one types: length, upper case, digit, symbol missing.
    expect(page.locator("#password-rules li.missing")).to_have_count(4)
    page.fill("#register-form input[name=password]", "Short1")
    expect(page.locator("#password-rules li.missing")).to_have_count(2)
    expect(page.locator("#register-form button[type=submit]")).to_be_disabled()
    if screenshot:
        screenshot(page)
    page.fill("#register-form input[name=password]", PASSWORD)
    expect(page.locator("#password-rules li.missing")).to_have_count(0)
    page.click("#register-form button[type=submit]")
    # Two bcrypt rounds (register, log in) at the default cost: slow on a loaded debug build.
    expect(page.locator("#whoami")).to_have_text(email, timeout=30000)
    expect(page.locator("#video-rows")).to_be_visible()


def row(page, name):
    return page.locator("#video-rows tr").filter(has=page.get_by_role("link", name=name, exact=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()
    t0 = time.monotonic()
    work = args.work
    a_mp4 = make_video(os.path.join(work, "a.mp4"), 4)
    b_mp4 = make_video(os.path.join(work, "b.mp4"), 5, size="352x288")
    long_mp4 = make_video(os.path.join(work, "long.mp4"), 40, size="640x360", rate=30)
    shot = lambda page, name: page.screenshot(path=os.path.join(args.screenshots, name), full_page=False)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-dev-shm-usage"])
        user = Page(browser, args.url + "/", "user A")
        page = user.page
        email_a = f"alice-{int(time.time())}@example.com"

        step("register, with the password rule checked as one types")
        register(user, email_a, screenshot=lambda pg: shot(pg, "register.png"))

        step("the session survives a reload (HttpOnly cookie; the page cannot read it)")
        page.reload()
        expect(page.locator("#whoami")).to_have_text(email_a)
        assert "ff_session" not in page.evaluate("document.cookie"), "the session cookie is readable from script"

        step("upload two videos at once; both progress bars reach COMPLETED without a reload")
        page.evaluate("window.__noReload = 1")
        page.fill("#opt-fps", "2")
        page.select_option("#opt-format", "jpg")
        page.set_input_files("#file-input", [payload("first.mp4", a_mp4), payload("second.mp4", b_mp4)])
        expect(page.locator("#uploads li[data-state=accepted]")).to_have_count(2, timeout=30000)
        for name in ("first.mp4", "second.mp4"):
            expect(row(page, name)).to_have_attribute("data-status", "COMPLETED", timeout=60000)
            expect(row(page, name).locator("progress")).to_have_attribute("value", "1")
        assert page.evaluate("window.__noReload") == 1, "the page reloaded"

        step("a text file renamed .mp4 shows its error next to its name")
        page.set_input_files("#file-input", [{"name": "notes.mp4", "mimeType": "video/mp4", "buffer": b"just some text\n" * 100}])
        refused = page.locator("#uploads li[data-state=refused]").filter(has_text="notes.mp4")
        expect(refused).to_contain_text("NOT_MEDIA", timeout=20000)

        step("a file named like markup is shown as text, and no script runs")
        page.set_input_files("#file-input", [payload(XSS_NAME, a_mp4)])
        expect(row(page, XSS_NAME)).to_have_attribute("data-status", "COMPLETED", timeout=60000)
        expect(page.locator("#uploads li").filter(has_text=XSS_NAME)).to_have_count(1)
        assert page.locator('img[src="x"]').count() == 0, "the file name became an <img> element"
        shot(page, "videos.png")

        step("cancel a third video mid-processing")
        page.fill("#opt-fps", "30")
        page.set_input_files("#file-input", [payload("long.mp4", long_mp4)])
        long_row = row(page, "long.mp4")
        expect(long_row).to_have_attribute("data-status", "PROCESSING", timeout=60000)
        long_row.get_by_role("button", name="Cancel").click()
        expect(long_row).to_have_attribute("data-status", "CANCELLED", timeout=20000)

        step("download the ZIP through a signed link and check its frames")
        first = row(page, "first.mp4")
        frames_expected = int(first.locator("td").nth(3).inner_text())
        with page.expect_download() as info:
            first.get_by_role("button", name="Download ZIP").click()
        data = open(info.value.path(), "rb").read()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            frames = [n for n in names if n.startswith("frame_") and n.endswith(".jpg")]
            assert len(frames) == frames_expected == 8, f"{len(frames)} frames in the ZIP, list says {frames_expected}"
            assert all(z.read(n)[:2] == b"\xff\xd8" for n in frames), "a frame is not a JPEG"
            manifest = json.loads(z.read("manifest.json"))
            assert manifest["frame_count"] == frames_expected

        step("the video page shows metadata and a thumbnail strip with timestamps")
        first.get_by_role("link", name="first.mp4").click()
        thumbs = page.locator("#thumbnails figure img")
        expect(thumbs).to_have_count(8, timeout=20000)
        # Polled with evaluate: wait_for_function compiles its predicate with eval, which the page's CSP forbids.
        deadline = time.monotonic() + 20
        while not page.evaluate("() => [...document.querySelectorAll('#thumbnails img')].every(i => i.complete && i.naturalWidth > 0)"):
            assert time.monotonic() < deadline, "thumbnails did not load"
            time.sleep(0.1)
        # Each caption is the frame's time from the manifest (m:ss.mmm).
        for i in (0, 7):
            sec = manifest["frames"][i]["seconds"]
            want = f"{int(sec // 60)}:{sec - 60 * int(sec // 60):06.3f}"
            expect(page.locator("#thumbnails figcaption").nth(i)).to_have_text(want)
        expect(page.locator("#video .facts")).to_contain_text("h264")
        expect(page.locator("#video .facts")).to_contain_text("320 × 240")
        shot(page, "video.png")
        page.goto(args.url + "/#/videos")
        # first, second, the markup-named one and long (notes.mp4 was refused, so it has no job).
        expect(page.locator("#video-rows tr[data-id]")).to_have_count(4, timeout=10000)
        a_ids = page.eval_on_selector_all("#video-rows tr[data-id]", "rows => rows.map(r => r.dataset.id)")
        assert len(a_ids) == 4, a_ids  # first, second, the markup-named one, long (notes.mp4 was refused)

        step("a second user sees none of the first user's videos or events")
        other = Page(browser, args.url + "/", "user B")
        register(other, f"bob-{int(time.time())}@example.com")
        expect(other.page.locator("#video-rows")).to_contain_text("No videos yet")
        other.page.evaluate("""() => { window.__events = [];
            const s = new EventSource('/events');
            s.addEventListener('job', e => window.__events.push(e.data));
            window.__open = new Promise(r => s.addEventListener('open', r)); }""")
        other.page.evaluate("window.__open")
        for vid in a_ids:
            status = other.page.evaluate("id => fetch('/videos/' + id).then(r => r.status)", vid)
            assert status == 404, f"user B got {status} for user A's video"
            status = other.page.evaluate("id => fetch('/videos/' + id + '/frames/0').then(r => r.status)", vid)
            assert status == 404, f"user B got {status} for a frame of user A's video"
        page.fill("#opt-fps", "2")
        page.set_input_files("#file-input", [payload("while-bob-listens.mp4", a_mp4)])
        expect(row(page, "while-bob-listens.mp4")).to_have_attribute("data-status", "COMPLETED", timeout=60000)
        # User A's own stream did carry those events (the row went live); B's carried none.
        time.sleep(0.5)
        leaked = other.page.evaluate("window.__events")
        assert leaked == [], f"user B received user A's events: {leaked[:3]}"
        other.page.reload()
        expect(other.page.locator("#video-rows")).to_contain_text("No videos yet")
        other.check_clean()

        step("an operator drains a node and sees it drained")
        ops = Page(browser, args.url + "/", "operator")
        ops.accept_confirms = True
        ops.page.fill("#operator-form input[name=adminToken]", args.admin_token)
        ops.page.click("#operator-form button[type=submit]")
        nodes = ops.page.locator("#node-rows tr[data-node]")
        expect(nodes).to_have_count(2, timeout=15000)
        expect(ops.page.locator("#job-counts [data-status=COMPLETED] strong")).to_have_text("4", timeout=10000)
        expect(ops.page.locator("#job-events li[data-kind]").first).to_be_visible(timeout=10000)
        time.sleep(3)  # a few samples for the frames/s history
        shot(ops.page, "operators.png")
        node1 = ops.page.locator("#node-rows tr[data-node=node-1]")
        node1.get_by_role("button", name="Drain").click()
        expect(node1).to_have_attribute("data-state", "drained", timeout=15000)
        assert any(d[0] == "confirm" for d in ops.dialogs), "drain asked no confirmation"
        node1.get_by_role("button", name="Enable").click()
        expect(node1).to_have_attribute("data-state", "online", timeout=15000)
        ops.check_clean()

        step("log out ends the session")
        page.click("#logout")
        expect(page.locator("#login-form")).to_be_visible()
        page.reload()
        expect(page.locator("#login-form")).to_be_visible()
        user.check_clean()
        browser.close()
    print(f"webtest: all steps passed in {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"webtest FAILED: {e}", file=sys.stderr)
        sys.exit(1)
