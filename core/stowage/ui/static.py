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
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#e3e7ed;--accent:#0969da;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--head:#24292f;--focus:#0550ae;--focus-dark:#f2b600}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.5rem;background:var(--head);color:#fff}
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
header nav.main{display:flex;gap:1rem}
header .signout{display:inline;margin-left:.6rem}
header .signout button{background:transparent;color:#fff;border:1px solid #8b949e;border-radius:4px;padding:.1rem .5rem}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
header :focus-visible{--focus:var(--focus-dark)}
form.stacked,form.signin{display:grid;grid-template-columns:minmax(10rem,16rem) minmax(0,32rem);gap:.55rem 1rem;align-items:start;margin:0 0 1rem}
form.signin{grid-template-columns:minmax(0,22rem)}
form.stacked fieldset{grid-column:1/-1;display:grid;grid-template-columns:minmax(10rem,16rem) minmax(0,32rem);gap:.55rem 1rem;border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem;margin:0}
form.stacked legend{font-weight:600;padding:0 .3rem}
form.stacked label{padding-top:.3rem;font-weight:500}
form.stacked .hint{grid-column:2;margin:-.35rem 0 0;font-size:.85rem;color:var(--muted)}
form.stacked .actions{grid-column:1/-1;display:flex;gap:.8rem;align-items:center}
input,select,textarea{font:inherit;padding:.3rem .45rem;border:1px solid #8c959f;border-radius:4px;max-width:100%;background:#fff;color:var(--fg)}
input[type=checkbox]{justify-self:start;margin-top:.45rem}
textarea{min-height:4.5rem;font-family:ui-monospace,monospace}
button.primary,button.danger,a.button{padding:.35rem .9rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;text-decoration:none;display:inline-block}
button.danger{background:var(--bad);border-color:var(--bad)}
button.secondary{padding:.35rem .9rem;border-radius:4px;border:1px solid var(--accent);background:#fff;color:var(--accent)}
.preview:empty{display:none}.preview{border:1px solid var(--line);border-radius:6px;padding:.4rem 1rem;margin:0 0 1rem}
button.small{font-size:.8rem;padding:0 .45rem;border:1px solid var(--bad);color:var(--bad);background:#fff;border-radius:4px}
.form-error{grid-column:1/-1;color:var(--bad);font-weight:600;margin:0}
.form-error:empty{display:none}
.form-status{color:var(--ok);font-weight:600}
.checks{display:flex;flex-wrap:wrap;gap:.3rem 1rem}
.checks label{font-weight:400;padding:0}
.admin-nav{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;margin:0 0 1rem;padding:.4rem 0;border-bottom:1px solid var(--line)}
.admin-nav .current{font-weight:700}
.choices{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.5rem;padding:0;list-style:none}
.choices a{display:block;padding:.5rem .7rem;border:1px solid var(--line);border-radius:6px;text-decoration:none}
.warning{border-left:4px solid var(--bad);padding:.4rem .8rem;background:#fff5f5}
.table-wrap{overflow-x:auto}
form.inline,form.inline .actions,form.inline .form-error,form.inline .form-status{display:inline}
form.inline .form-error:empty{display:none}
form.inline button{padding:0 .5rem;font-size:.85rem;white-space:nowrap}
dl.facts{margin:.2rem 0 0;font-size:.85rem;color:var(--muted)}
dl.facts div{display:flex;gap:.3rem}dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}
table.results{table-layout:fixed}
table.results td{overflow-wrap:anywhere}
table.results .c-repo{width:11%}table.results .c-path{width:37%}table.results .c-comp{width:17%}
table.results .c-size{width:8%}table.results .c-when{width:12%}table.results .c-sha{width:15%}
table.results td.when{white-space:normal}
table.images .c-details{width:35%}
@media (max-width:760px){table.results,table.results tbody,table.results tr,table.results td{display:block;width:auto}
table.results colgroup,table.results thead{display:none}
table.results tr{border-bottom:1px solid var(--line);padding:.4rem 0}
table.results td{border:0;padding:.1rem .3rem;text-align:left}
table.results td::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}
table.repositories td,table.listing td,table.components td{overflow-wrap:anywhere}}
@media (max-width:760px){header{flex-wrap:wrap;padding:.6rem .8rem}header .search{margin-left:0;width:100%}header .search input{width:100%}
main{padding:.8rem}form.stacked,form.stacked fieldset{grid-template-columns:minmax(0,1fr)}form.stacked .hint{grid-column:1}}
"""

JS = r""""use strict";
// Forms with class "rest" post to the REST API (the same endpoints scripts use) instead of submitting:
// data-method, data-url, data-encoding (json | multipart | text), data-next (where to go on success).
// Field names are the Nexus JSON names ("proxy.remoteUrl" -> {"proxy": {"remoteUrl": ...}}); data-type
// says int, bool or list. The hidden NX-ANTI-CSRF-TOKEN field becomes the header of the same name.
var TOKEN = "NX-ANTI-CSRF-TOKEN";
function setPath(target, path, value) {
  var parts = path.split("."), last = parts.pop();
  parts.forEach(function (part) { target = (target[part] = target[part] || {}); });
  if (Array.isArray(target[last]) && Array.isArray(value)) { target[last] = target[last].concat(value); }
  else { target[last] = value; }
}
function prune(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return value;
  Object.keys(value).forEach(function (key) {
    var inner = prune(value[key]);
    if (inner && typeof inner === "object" && !Array.isArray(inner) && Object.keys(inner).length === 0) delete value[key];
  });
  return value;
}
function fieldValue(el) {
  var kind = el.getAttribute("data-type") || "", text = el.value;
  if (kind === "list" && el.type === "checkbox") return el.checked ? [text] : [];
  if (el.type === "checkbox") return el.checked;
  if (text.trim() === "" && el.hasAttribute("data-optional")) return undefined;
  if (kind === "int") return text.trim() === "" ? null : Number(text);
  if (kind === "bool") return text === "true";
  if (kind === "json") return JSON.parse(text);
  if (kind === "list") return text.split(/[\n,]/).map(function (s) { return s.trim(); }).filter(Boolean);
  if (kind === "intlist") return text.split(/[\s,]+/).filter(Boolean).map(Number);
  return text;
}
function skipped(el, submitter) {
  // data-only-with="<button id>": the field is sent only when that button submits (a preview's target).
  var only = el.getAttribute("data-only-with");
  return !el.name || el.name === TOKEN || el.disabled || el.hasAttribute("data-skip") ||
    (only !== null && (!submitter || submitter.id !== only));
}
function formJson(form, submitter) {
  var body = {};
  Array.prototype.forEach.call(form.elements, function (el) {
    if (el.tagName === "BUTTON" || skipped(el, submitter)) return;
    var value = fieldValue(el);
    if (value !== undefined) setPath(body, el.name, value);
  });
  return prune(body);
}
function option(form, submitter, name) {
  // A submit button may override the form's data-url, data-method, data-next and data-result.
  if (submitter && submitter.hasAttribute(name)) return submitter.getAttribute(name);
  return form.getAttribute(name);
}
function renderResult(target, data) {
  target.textContent = "";
  if (data && !data.items) {
    // One object (a new user token): its fields, the pass code shown this once.
    var fields = document.createElement("dl");
    Object.keys(data).forEach(function (key) {
      if (data[key] === null || typeof data[key] === "object") return;
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = key;
      dd.textContent = String(data[key]);
      fields.appendChild(dt);
      fields.appendChild(dd);
    });
    target.appendChild(fields);
    return;
  }
  // A cleanup preview: {"items": [{group, name, version, assets: [{path, fileSize}]}], "totalBytes": n}.
  var items = (data && data.items) || [];
  var summary = document.createElement("p");
  summary.textContent = items.length + " component(s) would be removed, " + (data.totalBytes || 0) + " bytes.";
  target.appendChild(summary);
  var list = document.createElement("ul");
  items.forEach(function (item) {
    var li = document.createElement("li");
    var name = (item.group ? item.group + "/" : "") + item.name + (item.version ? " " + item.version : "");
    li.textContent = name + ": " + (item.assets || []).map(function (a) { return a.path; }).join(", ");
    list.appendChild(li);
  });
  target.appendChild(list);
}
function formUrl(form, submitter) {
  return option(form, submitter, "data-url").replace(/\{([\w.]+)\}/g, function (_, name) {
    return encodeURIComponent(form.elements[name].value);
  });
}
function errorText(response, text) {
  try {
    var data = JSON.parse(text);
    if (Array.isArray(data)) return data.map(function (e) { return e.message || JSON.stringify(e); }).join("; ");
    if (data.message) return data.message;
  } catch (ignored) { /* not JSON */ }
  return (text || response.statusText || "").trim() || ("HTTP " + response.status);
}
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.classList.contains("rest")) return;
  event.preventDefault();
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) return;
  var submitter = event.submitter || null;
  var status = form.querySelector(".form-error"), encoding = form.getAttribute("data-encoding") || "json";
  var headers = {"Accept": "application/json"}, body;
  headers[TOKEN] = form.elements[TOKEN].value;
  if (encoding === "multipart") {
    body = new FormData();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.tagName === "BUTTON" || skipped(el, submitter)) return;
      if (el.type === "file") { Array.prototype.forEach.call(el.files, function (f) { body.append(el.name, f); }); }
      else if (el.value !== "") { body.append(el.name, el.value); }
    });
  } else if (encoding === "text") {
    headers["Content-Type"] = "text/plain";
    body = form.elements[form.getAttribute("data-field")].value;
  } else if (encoding === "jsonlist") {
    // An endpoint that takes a JSON array (active realms, LDAP order): one list field is the body.
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(fieldValue(form.elements[form.getAttribute("data-field")]));
  } else if (encoding === "json") {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(formJson(form, submitter));
  }
  var method = option(form, submitter, "data-method") || "POST";
  var button = submitter || form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  if (status) status.textContent = "";
  fetch(formUrl(form, submitter), {method: method, headers: headers, body: method === "DELETE" ? undefined : body,
                        credentials: "same-origin"}).then(function (response) {
    return response.text().then(function (text) {
      if (button) button.disabled = false;
      if (response.ok) {
        var result = option(form, submitter, "data-result");
        if (result) { renderResult(document.getElementById(result), JSON.parse(text || "{}")); return; }
        var next = option(form, submitter, "data-next");
        if (next) { window.location.assign(next); return; }
        if (status) { status.className = "form-status"; status.textContent = form.getAttribute("data-done") || "Done."; }
        return;
      }
      if (status) { status.className = "form-error"; status.textContent = errorText(response, text); status.focus(); }
    });
  }, function (error) {
    if (button) button.disabled = false;
    if (status) { status.className = "form-error"; status.textContent = "The request failed: " + error; }
  });
});
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
