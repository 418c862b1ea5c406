"""The UI's only static files: one stylesheet and one small script, served with a content hash.

They live here as strings (no package data to lose in a wheel); pages link them as ``?v=<hash>`` so
browsers may cache them for a year.
"""

from __future__ import annotations

import hashlib

import falcon

CSS_PATH = "/static/stowage-ui.css"
JS_PATH = "/static/stowage-ui.js"

CSS = """\
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#e3e7ed;--accent:#1f6feb;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.5rem;background:#24292f;color:#fff}
header a{color:#fff;text-decoration:none}
header .brand{font-weight:700;font-size:1.1rem;margin-right:1rem}
header .search{display:flex;gap:.3rem;margin-left:auto}
header .search input{width:18rem;padding:.3rem .5rem;border-radius:4px;border:0}
header .account{margin-left:1rem}
main{padding:1rem 1.5rem 2rem;max-width:80rem}
h1{font-size:1.35rem;margin:.4rem 0 1rem;word-break:break-all}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
table{border-collapse:collapse;width:100%}
th,td{padding:.35rem .7rem;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num{text-align:right;white-space:nowrap}
td.when{white-space:nowrap;color:var(--muted)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{background:var(--bg);border:1px solid var(--line);padding:.7rem;overflow:auto;border-radius:6px}
.crumbs{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap}
.crumbs li+li::before{content:"/";padding:0 .4rem;color:var(--muted)}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.8rem;border:1px solid var(--line)}
.badge.ok{color:var(--ok);border-color:var(--ok)}
.badge.bad{color:var(--bad);border-color:var(--bad)}
.badge.warn{color:var(--warn);border-color:var(--warn)}
button{font:inherit;cursor:pointer}
button.copy{font-size:.75rem;padding:0 .4rem;margin-left:.3rem;border:1px solid var(--line);background:#fff;border-radius:4px}
button.copy.done{color:var(--ok);border-color:var(--ok)}
.sha{font-family:ui-monospace,monospace;font-size:.85em}
.pager{margin:1rem 0;display:flex;gap:1rem}
.tabs{display:flex;gap:1rem;margin:.2rem 0 1rem}
.tabs .current{font-weight:700}
.error{color:var(--bad);font-weight:600}
.search-page{margin:0 0 1rem}
.search-page input{width:18rem}
details{margin:.5rem 0 1rem}
summary{cursor:pointer;font-weight:600}
ul.assets{margin:0;padding-left:1.1rem}
.offscreen{position:fixed;left:-9999px;opacity:0}
footer{padding:1rem 1.5rem;color:var(--muted);border-top:1px solid var(--line)}
"""

JS = """\
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var text = button.getAttribute("data-copy");
  function done() { button.classList.add("done"); button.textContent = "copied"; }
  function fallback() {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
"""

_FILES = {CSS_PATH: (CSS.encode(), "text/css; charset=utf-8"), JS_PATH: (JS.encode(), "text/javascript; charset=utf-8")}
VERSION = hashlib.sha256(CSS.encode() + JS.encode()).hexdigest()[:12]


class StaticResource:
    def __init__(self, path: str):
        self.body, self.content_type = _FILES[path]
        self.etag = f'"{VERSION}"'

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Cache-Control", "public, max-age=31536000, immutable" if req.get_param("v") == VERSION
                        else "no-cache")
        resp.set_header("ETag", self.etag)
        if req.get_header("If-None-Match") == self.etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = self.content_type
        resp.data = self.body

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.on_get(req, resp)
