/* Standalone arena page (issue 20 item 1): two drafts as A and B, image viewer, autosave, resume, one submit.
   Everything it knows comes from the #arena-config JSON and the arena API (both blinded server-side).
   Keys (outside text fields): a, b, t choose A, B or tie. */
import {isTyping, postJSON} from "../core/common.js";
import {mountViewer} from "../imaging/viewer.js";

var cfg = JSON.parse(document.getElementById("arena-config").textContent);
var form = document.getElementById("arena-form");
var saveState = document.getElementById("save-state");
var errorBox = document.getElementById("form-error");
var storeKey = "arena:" + cfg.id;
var saving = false, dirty = false, retryMs = 2000, timer = null;

function post(path, body) { return postJSON(cfg.api + path, body); }

function radio(name) {
  var c = form.querySelector("input[name=" + name + "]:checked");
  return c ? c.value : null;
}
function answer() {
  var a = {preference: radio("preference"), quality_a: radio("quality_a"), quality_b: radio("quality_b"),
           comment: form.comment.value};
  ["quality_a", "quality_b"].forEach(function (k) { if (a[k] !== null) a[k] = parseInt(a[k], 10); });
  return a;
}
function fill(a) {
  ["preference", "quality_a", "quality_b"].forEach(function (k) {
    if (a[k] === null || a[k] === undefined || a[k] === "") return;
    var el = form.querySelector("input[name=" + k + "][value='" + a[k] + "']");
    if (el) el.checked = true;
  });
  if (a.comment) form.comment.value = a.comment;
}
function isEmpty(a) { return !a.preference && a.quality_a == null && a.quality_b == null && !a.comment; }
function setState(text, cls) { saveState.textContent = text; saveState.className = cls || "muted"; }
function remember() { try { localStorage.setItem(storeKey, JSON.stringify(answer())); } catch (e) { /* private mode */ } }
function forget() { try { localStorage.removeItem(storeKey); } catch (e) { /* ignore */ } }

function schedule(delay) {
  dirty = true;
  remember();
  setState("Not saved yet");
  clearTimeout(timer);
  timer = setTimeout(save, delay === undefined ? 700 : delay);
}

function save() {
  if (cfg.readonly || !dirty) return Promise.resolve();
  if (saving) { schedule(500); return Promise.resolve(); }
  saving = true; dirty = false;
  setState("Saving…");
  return post("autosave/", answer()).then(function (r) {
    saving = false;
    if (r.sessionEnded) { dirty = true; setState("Session ended: sign in again to save; your answer is kept in this browser", "error"); return; }
    if (r.offline || r.status >= 500) throw new Error("status " + r.status);
    if (r.status === 200) { retryMs = 2000; if (!dirty) { forget(); setState("Saved", "ok"); } return; }
    if (r.status === 400) { setState("Not saved", "error"); errorBox.textContent = r.body.detail || "Invalid answer."; return; }
    if (r.status === 409) { setState(""); errorBox.textContent = r.body.detail || "This task can no longer be changed."; lock(); return; }
    throw new Error("status " + r.status);
  }).catch(function () {
    saving = false; dirty = true;
    setState("Offline: your answer is kept in this browser and will be saved when the connection is back", "error");
    clearTimeout(timer);
    timer = setTimeout(save, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  });
}

function lock() {
  cfg.readonly = true;
  Array.prototype.forEach.call(form.querySelectorAll("input, textarea"), function (el) { if (el.type !== "hidden") el.disabled = true; });
  var b = document.getElementById("submit-arena");
  if (b) b.remove();
}

function submit(ev) {
  ev.preventDefault();
  if (cfg.readonly) return;
  errorBox.textContent = "";
  var a = answer();
  if (!a.preference) { errorBox.textContent = "Please give a preference (A, B or tie) before submitting."; return; }
  var pw = document.getElementById("signature-password");  // Trial.sign_submissions: the password signs it
  if (pw && !pw.value) { errorBox.textContent = "Enter your password to sign the judgement."; pw.focus(); return; }
  var body = pw ? Object.assign({}, a, {password: pw.value}) : a;
  if (pw) pw.value = "";
  clearTimeout(timer);
  var btn = document.getElementById("submit-arena");
  btn.disabled = true;  // one submit at a time; the server answers a repeat of the same answer as a success
  setState("Submitting…");
  post("submit/", body).then(function (r) {
    if (r.offline) throw new Error("offline");
    if (r.status === 200) {
      forget(); dirty = false; lock();
      document.getElementById("task-status").textContent = "Done";
      setState(r.body.already_submitted ? "Already submitted" : "Submitted", "ok");
      window.location.href = r.body.next ? cfg.worklist + r.body.next + "/" : cfg.worklist;
      return;
    }
    btn.disabled = false;
    setState("");
    errorBox.textContent = r.sessionEnded ? "Your session has ended: sign in again, then submit. Nothing is lost."
      : ((r.body && r.body.detail) || "The judgement could not be submitted.");
    if (r.status === 409) lock();
  }).catch(function () {
    btn.disabled = false;
    setState("Offline: not submitted yet; your answer is kept in this browser. Try again.", "error");
    remember();
  });
}

function onKey(e) {
  if (cfg.readonly || e.ctrlKey || e.metaKey || e.altKey) return;
  if (isTyping(e.target) && e.target.type !== "radio") return;  // text fields keep their keys
  var value = {a: "A", b: "B", t: "tie"}[e.key.toLowerCase()];
  if (!value) return;
  var el = form.querySelector("input[name=preference][value='" + value + "']");
  if (!el) return;
  el.checked = true;
  el.focus();
  e.preventDefault();
  e.stopPropagation();
  errorBox.textContent = "";
  schedule();
}

window.arenaViewer = mountViewer(cfg.images);
if (cfg.readonly) forget();
else start();

function start() {
  var local = null;
  try { local = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { local = null; }
  if (local && !isEmpty(local) && JSON.stringify(local) !== JSON.stringify(answer())) {
    fill(local);  // typed while offline: restore it and save it now
    schedule(0);
  } else if (!isEmpty(cfg.answer || {})) {
    setState("Resumed", "ok");
  }
  form.addEventListener("change", function () { errorBox.textContent = ""; schedule(); });
  form.comment.addEventListener("input", function () { schedule(1500); });
  form.addEventListener("submit", submit);
  document.addEventListener("keydown", onKey, true);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden" && dirty) save(); });
}
