/* Blinded rating page: image viewer, autosave, resume and one submit.
   Everything it knows comes from the #rating-config JSON and the rating API (both blinded server-side). */
import {isSignedOut, postJSON, sessionEnded} from "../core/common.js";
import {mountViewer} from "../imaging/viewer.js";

var cfg = JSON.parse(document.getElementById("rating-config").textContent);
var form = document.getElementById("rating-form");
var saveState = document.getElementById("save-state");
var errorBox = document.getElementById("form-error");
var storeKey = "rating:" + cfg.id;
var saving = false, dirty = false, retryMs = 2000, timer = null;

function post(path, body) { return postJSON(cfg.api + path, body); }

// -- answer ------------------------------------------------------------------------------------------
function radio(name) {
  var c = form.querySelector("input[name=" + name + "]:checked");
  return c ? c.value : null;
}
function answer() {
  var a = { quality_a: radio("quality_a"), comment: form.comment.value };
  if (cfg.kind === "pair") {
    a.preference = radio("preference");
    a.quality_b = radio("quality_b");
  }
  if (cfg.ask_guess) a.blinding_guess = radio("blinding_guess");
  ["quality_a", "quality_b"].forEach(function (k) { if (a[k] !== null && a[k] !== undefined) a[k] = parseInt(a[k], 10); });
  return a;
}
function fill(a) {
  ["preference", "quality_a", "quality_b", "blinding_guess"].forEach(function (k) {
    if (a[k] === null || a[k] === undefined || a[k] === "") return;
    var el = form.querySelector("input[name=" + k + "][value='" + a[k] + "']");
    if (el) el.checked = true;
  });
  if (a.comment) form.comment.value = a.comment;
}
function isEmpty(a) {
  return !a.preference && a.quality_a == null && a.quality_b == null && !a.comment && !a.blinding_guess;
}
function setState(text, cls) {
  saveState.textContent = text;
  saveState.className = cls || "muted";
}

// -- autosave: debounced, retried on a dropped connection, backed by localStorage -------------------------
function remember() {
  try { localStorage.setItem(storeKey, JSON.stringify(answer())); } catch (e) { /* private mode */ }
}
function forget() {
  try { localStorage.removeItem(storeKey); } catch (e) { /* ignore */ }
}
function schedule(delay) {
  dirty = true;
  remember();
  if (isSignedOut()) { setState(SIGNED_OUT, "error"); return; }  // saved once signed in again
  setState("Not saved yet");
  clearTimeout(timer);
  timer = setTimeout(save, delay === undefined ? 700 : delay);
}
/* The session ended: say so (not "Offline"), offer to sign in in place, then save what is waiting. */
var SIGNED_OUT = "Session ended: sign in again to save; your answer is kept in this browser";
function signInAgain() {
  clearTimeout(timer);
  remember();
  setState(SIGNED_OUT, "error");
  sessionEnded().then(function () {
    setState("Signed in again");
    if (errorBox.textContent.indexOf("Your session has ended") === 0) errorBox.textContent = "";
    if (dirty) save();
  });
}

function save() {
  if (cfg.readonly || !dirty || isSignedOut()) return Promise.resolve();
  if (saving) { schedule(500); return Promise.resolve(); }
  saving = true; dirty = false;
  var a = answer();
  setState("Saving…");
  return post("autosave/", a).then(function (r) {
    saving = false;
    if (r.sessionEnded) { dirty = true; signInAgain(); return; }
    if (r.offline || r.status >= 500) throw new Error("status " + r.status);
    if (r.status === 200) {
      retryMs = 2000;
      if (!dirty) { forget(); setState("Saved", "ok"); } // the server has it; keep only unsaved input locally
      return;
    }
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
  var b = document.getElementById("submit-rating");
  if (b) b.remove();
}

function missing(a) {
  var m = [];
  if (cfg.kind === "pair" && !a.preference) m.push("a preference");
  if (a.quality_a == null) m.push("a quality score for report A");
  if (cfg.kind === "pair" && a.quality_b == null) m.push("a quality score for report B");
  if (cfg.ask_guess && !a.blinding_guess) m.push("your guess of which report was written with AI assistance");
  return m;
}

function submit(ev) {
  ev.preventDefault();
  if (cfg.readonly) return;
  errorBox.textContent = "";
  var a = answer();
  var m = missing(a);
  if (m.length) { errorBox.textContent = "Please give " + m.join(" and ") + " before submitting."; return; }
  var pw = document.getElementById("signature-password");  // Trial.sign_submissions: the password signs it
  if (pw && !pw.value) { errorBox.textContent = "Enter your password to sign the rating."; pw.focus(); return; }
  var body = pw ? Object.assign({}, a, {password: pw.value}) : a;
  if (pw) pw.value = "";
  clearTimeout(timer);
  var btn = document.getElementById("submit-rating");
  btn.disabled = true;
  setState("Submitting…");
  post("submit/", body).then(function (r) {
    if (r.offline) throw new Error("offline");
    if (r.sessionEnded) {
      btn.disabled = false;
      dirty = true;
      errorBox.textContent = "Your session has ended: sign in again (above), then submit. Nothing is lost.";
      signInAgain();
      return;
    }
    if (r.status === 200) {
      forget(); dirty = false; lock();
      document.getElementById("task-status").textContent = "Done";
      setState(r.body.already_submitted ? "Already submitted" : "Submitted", "ok");
      window.location.href = r.body.next ? cfg.worklist + r.body.next + "/" : cfg.worklist;
      return;
    }
    btn.disabled = false;
    setState("");
    errorBox.textContent = (r.body && r.body.detail) || "The rating could not be submitted.";
    if (r.status === 409) lock();
  }).catch(function () {
    btn.disabled = false;
    setState("Offline: not submitted yet; your answer is kept in this browser. Try again.", "error");
    remember();
  });
}

// -- start -------------------------------------------------------------------------------------------
window.ratingViewer = mountViewer(cfg.images);
if (cfg.readonly) forget();
else start();

function start() {
  var server = cfg.answer || {};
  var local = null;
  try { local = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { local = null; }
  if (local && !isEmpty(local) && JSON.stringify(local) !== JSON.stringify(answer())) {
    fill(local); // typed while offline: restore it and save it now
    schedule(0);
  } else if (!isEmpty(server)) {
    setState("Resumed", "ok");
  }
  form.addEventListener("change", function () { errorBox.textContent = ""; schedule(); });
  form.comment.addEventListener("input", function () { schedule(1500); });
  form.addEventListener("submit", submit);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden" && dirty) save(); });
  window.addEventListener("beforeunload", function (e) { if (dirty && !cfg.readonly) { save(); e.preventDefault(); e.returnValue = ""; } });
}
