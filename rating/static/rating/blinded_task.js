/* What the two blinded task pages share (rating page rate.js, arena page arena.js; docs/architecture.md, front end):
   the answer's radios, autosave (debounced, retried on a dropped connection, backed by localStorage), resume, one
   submit (signed with the password when the trial signs submissions) and the lock once done.
   Each page passes what differs: its config, form, storage key, submit button, the answer it sends, what a submit
   still needs and the noun in its messages. A lost session offers to sign in again in place (nothing typed is lost),
   and leaving the page with an answer not yet saved asks first (beforeunload). */
import {isSignedOut, postJSON, sessionEnded} from "../core/common.js";

var FIELDS = ["preference", "quality_a", "quality_b", "blinding_guess"];
var SIGNED_OUT = "Session ended: sign in again to save; your answer is kept in this browser";

/** Value of the checked radio called name in form, or null. */
export function radio(form, name) {
  var c = form.querySelector("input[name=" + name + "]:checked");
  return c ? c.value : null;
}

/** opts: {cfg, form, storeKey, submitId, answer(), missing(a) -> [what is missing], noun}. Starts the page (unless
 *  cfg.readonly) and answers {schedule, clearError}. */
export function mountBlindedTask(opts) {
  var cfg = opts.cfg, form = opts.form, answer = opts.answer;
  var saveState = document.getElementById("save-state");
  var errorBox = document.getElementById("form-error");
  var saving = false, dirty = false, retryMs = 2000, timer = null;

  function post(path, body) { return postJSON(cfg.api + path, body); }
  function fill(a) {
    FIELDS.forEach(function (k) {
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
  function remember() {
    try { localStorage.setItem(opts.storeKey, JSON.stringify(answer())); } catch (e) { /* private mode */ }
  }
  function forget() {
    try { localStorage.removeItem(opts.storeKey); } catch (e) { /* ignore */ }
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
    setState("Saving…");
    return post("autosave/", answer()).then(function (r) {
      saving = false;
      if (r.sessionEnded) {
        dirty = true;
        signInAgain();
        return;
      }
      if (r.offline || r.status >= 500) throw new Error("status " + r.status);
      if (r.status === 200) {
        retryMs = 2000;
        if (!dirty) { forget(); setState("Saved", "ok"); }  // the server has it; keep only unsaved input locally
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
    var b = document.getElementById(opts.submitId);
    if (b) b.remove();
  }

  function submitted(r) {
    forget(); dirty = false; lock();
    document.getElementById("task-status").textContent = "Done";
    setState(r.body.already_submitted ? "Already submitted" : "Submitted", "ok");
    window.location.href = r.body.next ? cfg.worklist + r.body.next + "/" : cfg.worklist;
  }

  function submit(ev) {
    ev.preventDefault();
    if (cfg.readonly) return;
    errorBox.textContent = "";
    var a = answer();
    var m = opts.missing(a);
    if (m.length) { errorBox.textContent = "Please give " + m.join(" and ") + " before submitting."; return; }
    var pw = document.getElementById("signature-password");  // Trial.sign_submissions: the password signs it
    if (pw && !pw.value) { errorBox.textContent = "Enter your password to sign the " + opts.noun + "."; pw.focus(); return; }
    var body = pw ? Object.assign({}, a, {password: pw.value}) : a;
    if (pw) pw.value = "";
    clearTimeout(timer);
    var btn = document.getElementById(opts.submitId);
    btn.disabled = true;  // one submit at a time; the server answers a repeat of the same answer as a success
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
      if (r.status === 200) { submitted(r); return; }
      btn.disabled = false;
      setState("");
      errorBox.textContent = (r.body && r.body.detail) || "The " + opts.noun + " could not be submitted.";
      if (r.status === 409) lock();
    }).catch(function () {
      btn.disabled = false;
      setState("Offline: not submitted yet; your answer is kept in this browser. Try again.", "error");
      remember();
    });
  }

  function start() {
    var local = null;
    try { local = JSON.parse(localStorage.getItem(opts.storeKey) || "null"); } catch (e) { local = null; }
    if (local && !isEmpty(local) && JSON.stringify(local) !== JSON.stringify(answer())) {
      fill(local);  // typed while offline: restore it and save it now
      schedule(0);
    } else if (!isEmpty(cfg.answer || {})) {
      setState("Resumed", "ok");
    }
    form.addEventListener("change", function () { errorBox.textContent = ""; schedule(); });
    form.comment.addEventListener("input", function () { schedule(1500); });
    form.addEventListener("submit", submit);
    document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden" && dirty) save(); });
    window.addEventListener("beforeunload", function (e) { if (dirty && !cfg.readonly) { save(); e.preventDefault(); e.returnValue = ""; } });
  }

  if (cfg.readonly) forget();
  else start();
  return {schedule: schedule, clearError: function () { errorBox.textContent = ""; }};
}
