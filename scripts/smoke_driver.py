"""Drive one package from script to approval to rendered video over HTTP, as people would.

Used by scripts/smoke.sh against gunicorn in production config. Talks plain HTTP to gunicorn on
loopback where nginx would terminate TLS, so it deliberately sends the app's Secure cookies over it.
Usage: smoke_driver.py BASE_URL VIDEO_FILE  (users and passwords in SMOKE_* environment variables).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import sys
import time

import pyotp
import requests

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')
MANIFEST_RE = re.compile(r'name="manifest_sha256"[^>]*value="([0-9a-f]{64})"'
                         r'|value="([0-9a-f]{64})"[^>]*name="manifest_sha256"')
TITLE = "资产配置的三个基本原则（冒烟测试）"


# nginx's TLS is not in this picture: send the Secure cookies over loopback HTTP. Patched on the class
# because requests merges each request's cookies into a fresh jar with the default policy.
http.cookiejar.DefaultCookiePolicy.return_ok_secure = lambda self, cookie, request: True


def step(message: str) -> None:
    print(f"smoke: {message}", flush=True)


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise SystemExit("no CSRF token in the page")
    return match.group(1) or match.group(2)


class Person:
    def __init__(self, base: str, email: str, password: str):
        self.base, self.email, self.password = base, email, password
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=60, allow_redirects=False, **kw)

    def post(self, path: str, data: dict, page: str | None = None, **kw) -> requests.Response:
        token = csrf(self.get(page or path).text)
        return self.http.post(self.base + path, data={**data, "csrf_token": token}, timeout=120,
                              allow_redirects=False, **kw)

    def expect(self, resp: requests.Response, *codes: int) -> requests.Response:
        if resp.status_code not in codes:
            raise SystemExit(f"{resp.request.method} {resp.request.url}: {resp.status_code}\n{resp.text[:1500]}")
        return resp

    def login(self) -> requests.Response:
        return self.expect(self.post("/login", {"email": self.email, "password": self.password}), 302)


def approve(officer: Person, kind: str) -> None:
    queue = officer.expect(officer.get("/compliance/queue"), 200).text
    ids = sorted({int(n) for n in re.findall(r"/compliance/reviews/(\d+)", queue)})
    if not ids:
        raise SystemExit(f"no {kind} review in the queue")
    review = f"/compliance/reviews/{ids[-1]}"
    officer.expect(officer.post(f"{review}/claim", {}, page=review), 302)
    page = officer.expect(officer.get(review), 200).text
    manifest = MANIFEST_RE.search(page)
    if not manifest:
        raise SystemExit("no manifest hash on the review page")
    resp = officer.http.post(officer.base + f"{review}/decision", allow_redirects=False, timeout=60, data={
        "csrf_token": csrf(page), "decision": "approve", "reason": "",
        "manifest_sha256": manifest.group(1) or manifest.group(2)})
    officer.expect(resp, 302)
    step(f"{kind} approved (review {ids[-1]})")


def main() -> int:
    base, video_path = sys.argv[1].rstrip("/"), sys.argv[2]
    env = os.environ
    advisor = Person(base, env["SMOKE_ADVISOR_EMAIL"], env["SMOKE_ADVISOR_PASSWORD"])
    officer = Person(base, env["SMOKE_OFFICER_EMAIL"], env["SMOKE_OFFICER_PASSWORD"])

    advisor.login()
    body = (f"大家好，我是{env['SMOKE_ADVISOR_NAME']}，执业证书编号{env['SMOKE_ADVISOR_SAC']}。"
            "今天聊聊资产配置的基本思路：分散投资、长期持有、控制回撤。"
            "投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。")
    fields = {"title": TITLE, "body": body, "caption": "分散、长期、控制回撤。投资有风险，入市需谨慎。",
              "hashtags": "#资产配置", "platforms": "douyin"}
    resp = advisor.expect(advisor.post("/studio/scripts/new", fields), 302)
    script_path = resp.headers["Location"].split("?")[0].split("#")[0]
    script_id = int(re.search(r"/studio/scripts/(\d+)", script_path).group(1))
    advisor.expect(advisor.post(f"/studio/scripts/{script_id}/submit", fields,
                                page=f"/studio/scripts/{script_id}"), 302)
    step(f"script {script_id} submitted")

    # Production requires a second factor of compliance officers: enrol it through the pages.
    resp = officer.login()
    page = officer.expect(officer.get("/account/2fa"), 200).text
    resp = officer.expect(officer.http.post(base + "/account/2fa/start", data={"csrf_token": csrf(page)},
                                            timeout=60), 200)
    secret = SECRET_RE.search(resp.text).group(1)
    officer.expect(officer.http.post(base + "/account/2fa/confirm", timeout=60, data={
        "csrf_token": csrf(resp.text), "code": pyotp.TOTP(secret).now()}), 200)
    step("officer enrolled a second factor")
    approve(officer, "script")

    resp = advisor.expect(advisor.post(f"/studio/scripts/{script_id}/packages", {},
                                       page=f"/studio/scripts/{script_id}"), 302)
    package_id = int(re.search(r"/studio/packages/(\d+)", resp.headers["Location"]).group(1))
    package_page = f"/studio/packages/{package_id}"
    token = csrf(advisor.get(package_page).text)
    with open(video_path, "rb") as fh:
        resp = advisor.http.post(base + f"{package_page}/video", data=fh, timeout=300, headers={
            "X-CSRFToken": token, "X-Requested-With": "XMLHttpRequest", "X-Filename": "smoke.mp4",
            "Content-Type": "application/octet-stream", "Accept": "application/json"})
    advisor.expect(resp, 201)
    status_url = resp.json()["status_url"]
    step(f"video uploaded to package {package_id}; rendering")
    deadline = time.monotonic() + 120
    while True:
        status = advisor.expect(advisor.get(status_url), 200).json()
        if status["status"] == "ready":
            break
        if status["status"] == "failed" or time.monotonic() > deadline:
            raise SystemExit(f"render did not finish: {status}")
        time.sleep(0.5)
    step("rendition ready")

    page = advisor.expect(advisor.get(package_page), 200).text
    channels = re.findall(r'name="channels"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="channels"', page)
    channel_ids = [a or b for a, b in channels]
    if not channel_ids:
        raise SystemExit("no channel to choose on the package page")
    advisor.expect(advisor.http.post(base + package_page, allow_redirects=False, timeout=60, data={
        "csrf_token": csrf(page), "title": TITLE, "caption": fields["caption"], "hashtags": "#资产配置",
        "channels": channel_ids[:1]}), 302)
    advisor.expect(advisor.post(f"{package_page}/submit", {}, page=package_page), 302)
    step(f"package {package_id} submitted")
    approve(officer, "package")
    approved = officer.expect(officer.get("/compliance/approved"), 200).text
    if TITLE not in approved:
        raise SystemExit("the package is not on the approved list")
    step("package approved and listed")
    print(f"PACKAGE_ID={package_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
