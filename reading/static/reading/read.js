/* The read page (viewer + report form), generic for every arm: it only knows the page data in #read-data and
 * the form.
 * - active time: a second counts when the page is visible and there was input within IDLE_MS; the count is sent
 *   with each autosave, and in a heartbeat every BEAT_MS when no autosave carried them in that time (the server
 *   caps each increment by the wall time since the last one; docs/performance.md, "The reading room's requests");
 * - autosave every few seconds after a change and when the page is hidden or left (fetch keepalive);
 *   a copy is kept in localStorage and restored when it is newer than the server's autosave;
 * - submit (button or Ctrl+Enter) is sent once; a repeat is answered by the server with the saved read.
 */
import {isPlainKey, isSignedOut, postJSON, sessionEnded} from "../core/common.js";
import {mountViewer} from "../imaging/viewer.js";

const opts = Object.assign({idleMs: 60000, beatMs: 15000, autosaveMs: 3000}, window.CXR_READ_OPTIONS || {});
const IDLE_MS = opts.idleMs;
const BEAT_MS = opts.beatMs;
const AUTOSAVE_MS = opts.autosaveMs;

const data = JSON.parse(document.getElementById("read-data").textContent);
const form = document.getElementById("read-form");
const statusEl = document.getElementById("save-status");
const messageEl = document.getElementById("form-message");
const submitBtn = document.getElementById("submit-read");
const storeKey = "cxr-read:" + data.public_id;
let readonly = !!data.readonly;

/* The AI arm's boxes, in their own block (#ai-boxes: only an AI-arm page has it; reading/views.py). */
function aiBoxes() {
  const el = document.getElementById("ai-boxes");
  const ai = el ? JSON.parse(el.textContent) : null;
  if (!ai || !ai.boxes) return [];
  const labels = Object.fromEntries(data.findings.map((f) => [f.code, f.label]));
  return ai.boxes.map((b) => {
    const finding = labels[b.finding] || b.finding || "Finding";
    return Object.assign({}, b, {text: b.label && b.label !== finding ? `${finding}: ${b.label}` : finding,
      size: ai.image_size || null});
  });
}

window.cxrViewer = mountViewer(data.images, aiBoxes());

/* ---- the report ---- */
function collect() {
  const marks = {};
  for (const f of data.findings) {
    const checked = form.querySelector(`input[name="present_${f.code}"]:checked`);
    const conf = form.querySelector(`select[name="confidence_${f.code}"]`).value;
    marks[f.code] = {present: checked ? checked.value === "present" : null, confidence: conf ? parseInt(conf, 10) : null};
  }
  const report = {findings_text: form.findings_text.value, impression_text: form.impression_text.value, finding_marks: marks};
  // Fields other modules of the page add to the report (form.cxrExtra: {key: () => value}), e.g. box_review.js.
  for (const [key, get] of Object.entries(form.cxrExtra || {})) report[key] = get();
  return report;
}

function fill(report) {
  form.findings_text.value = report.findings_text || "";
  form.impression_text.value = report.impression_text || "";
  const marks = report.finding_marks || {};
  for (const f of data.findings) {
    const m = marks[f.code] || {};
    form.querySelectorAll(`input[name="present_${f.code}"]`).forEach((r) => {
      r.checked = (m.present === true && r.value === "present") || (m.present === false && r.value === "absent");
    });
    form.querySelector(`select[name="confidence_${f.code}"]`).value = m.confidence ? String(m.confidence) : "";
  }
}

function setStatus(text) { statusEl.textContent = text; }
function setMessage(text, ok) {
  messageEl.textContent = text || "";
  messageEl.classList.toggle("ok", !!ok);
}

/* ---- local copy ---- */
function readLocal() {
  try { return JSON.parse(window.localStorage.getItem(storeKey) || "null"); } catch (e) { return null; }
}
function writeLocal(dirty) {
  try { window.localStorage.setItem(storeKey, JSON.stringify({report: collect(), editedAt: Date.now(), dirty})); } catch (e) { /* full or blocked */ }
}
function markLocalClean() {
  const l = readLocal();
  if (l) { l.dirty = false; try { window.localStorage.setItem(storeKey, JSON.stringify(l)); } catch (e) { /* ignore */ } }
}

/* ---- active time ---- */
let lastInput = Date.now();
let lastTick = Date.now();
let pending = 0;  // active seconds not yet acknowledged by the server
let inFlight = 0;
let lastCarried = 0;  // when an autosave or a heartbeat last carried active seconds
["keydown", "pointerdown", "pointermove", "wheel", "input", "scroll"].forEach((t) =>
  document.addEventListener(t, () => { lastInput = Date.now(); }, {passive: true, capture: true}));
setInterval(() => {
  const now = Date.now();
  const dt = Math.min(now - lastTick, 2000) / 1000;
  lastTick = now;
  if (!readonly && document.visibilityState === "visible" && now - lastInput < IDLE_MS) pending += dt;
}, 1000);

function takeSeconds() {
  lastCarried = Date.now();
  const s = Math.round(pending * 10) / 10;
  pending -= s;
  inFlight += s;
  return s;
}
function settle(s, ok) {
  inFlight -= s;
  if (!ok) pending += s;  // not counted by the server: send it again
}

function beat(keepalive) {
  if (readonly || pending < 0.5 || isSignedOut()) return;
  if (!keepalive && Date.now() - lastCarried < BEAT_MS) return;  // an autosave carried them: no request needed
  const s = takeSeconds();
  postJSON(data.urls.heartbeat, {seconds: s}, {keepalive}).then((r) => {
    settle(s, r.ok || (r.status >= 400 && r.status < 500 && !r.sessionEnded));  // signed out: send them again later
    if (r.sessionEnded) signInAgain();
  });
}

/* The session ended: say so (not "offline"), offer to sign in in place, then save what is waiting. */
const SIGNED_OUT = "Session ended: sign in again to save (your text is kept on this device)";
function signInAgain() {
  setStatus(SIGNED_OUT);
  sessionEnded().then(() => {
    setStatus("Signed in again");
    if (messageEl.textContent.startsWith("Your session has ended")) setMessage("");
    if (dirty) save(false);
  });
}
setInterval(() => beat(false), BEAT_MS);

/* ---- autosave ---- */
let dirty = false;
let saveTimer = null;
let saving = false;

function scheduleSave() {
  if (saveTimer || isSignedOut()) return;
  saveTimer = setTimeout(() => { saveTimer = null; save(false); }, AUTOSAVE_MS);
}

function save(keepalive) {
  if (readonly || !dirty || (saving && !keepalive)) return Promise.resolve();
  dirty = false;
  saving = true;
  const s = takeSeconds();
  return postJSON(data.urls.autosave, Object.assign(collect(), {seconds: s}), {keepalive})
    .then((r) => {
      settle(s, r.ok);  // refused or not sent: the next heartbeat or autosave carries them
      const body = r.body;
      if (r.offline) {
        dirty = true;
        setStatus("Offline: your text is kept on this device and saved when back online");
      } else if (r.sessionEnded) {
        dirty = true;
        signInAgain();
      } else if (r.ok) {
        data.autosaved_at = body.autosaved_at;
        if (!dirty) markLocalClean();
        setStatus(body.submitted ? "Already submitted" : "Saved " + new Date().toLocaleTimeString());
      } else {
        dirty = true;
        setStatus("Not saved: " + (body.detail || r.status) + " (kept on this device)");
      }
    })
    .finally(() => { saving = false; if (dirty) scheduleSave(); });
}

/* A field put right loses its red mark (the others keep theirs until the next submit). */
function refreshFault(target) {
  const row = target.closest && target.closest("tr.at-fault");
  if (row && !problems(collect()).some((p) => p.code === row.dataset.code)) {
    row.classList.remove("at-fault");
    row.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  if (target.tagName === "TEXTAREA" && target.value.trim()) form.findings_text.removeAttribute("aria-invalid");
}
form.addEventListener("change", (e) => refreshFault(e.target));

form.addEventListener("input", (e) => {
  if (readonly) return;
  refreshFault(e.target);
  dirty = true;
  writeLocal(true);
  setStatus(isSignedOut() ? SIGNED_OUT : "Editing…");
  scheduleSave();
});
form.addEventListener("change", () => form.dispatchEvent(new Event("input")));

function leave() {
  if (readonly) return;
  beat(true);
  if (dirty) { writeLocal(true); save(true); }
}
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") leave(); });
window.addEventListener("pagehide", leave);
window.addEventListener("online", () => { if (dirty) save(false); });

/* restore a newer local copy (a dropped connection or a closed tab before the last autosave) */
if (!readonly) {
  const local = readLocal();
  const serverAt = data.autosaved_at ? Date.parse(data.autosaved_at) : 0;
  if (local && local.dirty && local.editedAt > serverAt) {
    fill(local.report);
    dirty = true;
    setStatus("Restored your unsaved text from this device");
    save(false);
  }
} else {
  try { window.localStorage.removeItem(storeKey); } catch (e) { /* ignore */ }
}

/* ---- submit ---- */
let submitting = false;

/** What stops a submit: [{message, field}] in form order; field is the control to focus. */
function problems(report) {
  const found = [];
  for (const f of data.findings) {
    const m = report.finding_marks[f.code];
    if (m.present === null || m.confidence === null) {
      const field = m.present === null
        ? form.querySelector(`input[name="present_${f.code}"]`)
        : form.querySelector(`select[name="confidence_${f.code}"]`);
      found.push({message: `Mark ${f.label} present or absent, with a confidence.`, field, code: f.code});
    }
  }
  if (!report.findings_text.trim() && !report.impression_text.trim()) {
    found.push({message: "Write the findings or the impression.", field: form.findings_text});
  }
  return found;
}

function clearFaults() {
  form.querySelectorAll("tr.at-fault").forEach((tr) => tr.classList.remove("at-fault"));
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

/** Shows the first problem beside Submit, marks every field at fault and moves focus to the first one. */
function showProblems(found) {
  clearFaults();
  for (const p of found) {
    if (p.code) form.querySelector(`tr[data-code="${p.code}"]`).classList.add("at-fault");
    p.field.setAttribute("aria-invalid", "true");
  }
  const more = found.length > 1 ? ` (${found.length - 1} more marked in red)` : "";
  setMessage(found[0].message + more);
  found[0].field.scrollIntoView({block: "center"});
  found[0].field.focus({preventScroll: true});
}

function finish(body) {
  readonly = true;
  dirty = false;
  try { window.localStorage.removeItem(storeKey); } catch (e) { /* ignore */ }
  fill(body.report);
  form.querySelector("fieldset").disabled = true;
  if (submitBtn) submitBtn.remove();
  const sign = document.getElementById("sign-field");
  if (sign) sign.remove();
  document.getElementById("next-link").classList.remove("hidden");
  setStatus("Submitted " + new Date(body.submitted_at).toLocaleString());
  setMessage(body.already_submitted ? "This read was already submitted; the saved report is shown." : "Report submitted.", true);
}

function submit() {
  if (readonly || submitting) return;
  const report = collect();
  const found = problems(report);
  if (found.length) { showProblems(found); return; }
  clearFaults();
  const pw = document.getElementById("signature-password");  // Trial.sign_submissions: the password signs it
  if (pw && !pw.value) { setMessage("Enter your password to sign the report."); pw.focus(); return; }
  const signed = pw ? {password: pw.value} : {};
  if (pw) pw.value = "";
  submitting = true;
  if (submitBtn) submitBtn.disabled = true;
  setMessage("Submitting…", true);
  const s = takeSeconds();
  postJSON(data.urls.submit, Object.assign({}, report, {seconds: s}, signed))
    .then((r) => {
      settle(s, r.ok);
      if (r.ok) finish(r.body);
      else if (r.offline) setMessage("No connection: nothing is lost; submit again when back online.");
      else if (r.sessionEnded) {
        setMessage("Your session has ended: sign in again (above), then submit. Nothing is lost.");
        signInAgain();
      }
      else setMessage(r.body.detail || ("The server answered " + r.status));
    })
    .finally(() => { submitting = false; if (submitBtn) submitBtn.disabled = false; });
}

form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });

/* ---- "Normal study": every finding absent (Alt+N or the button); asks first when any is marked present. ---- */
const normalBtn = document.getElementById("normal-study");
function markNormal() {
  if (readonly || !normalBtn) return;
  const present = data.findings.filter((f) => form.querySelector(`input[name="present_${f.code}"][value="present"]`).checked);
  if (present.length) {
    const names = present.map((f) => f.label).join(", ");
    if (!window.confirm(`Mark every finding absent? This changes ${names} from present to absent.`)) return;
  }
  for (const f of data.findings) {
    const radio = form.querySelector(`input[name="present_${f.code}"][value="absent"]`);
    if (!radio.checked) { radio.checked = true; radio.dispatchEvent(new Event("change", {bubbles: true})); }
  }
  const empty = data.findings.map((f) => form.querySelector(`select[name="confidence_${f.code}"]`)).find((s) => !s.value);
  setMessage(`All ${data.findings.length} findings marked absent${empty ? ": give your confidence for each" : ""}.`, true);
  (empty || submitBtn).focus();
}
if (normalBtn) normalBtn.addEventListener("click", markNormal);
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); submit(); return; }
  if (e.altKey && !e.ctrlKey && !e.metaKey && e.code === "KeyN") { e.preventDefault(); markNormal(); return; }
  if (e.key === "n" && readonly && isPlainKey(e)) {
    window.location.href = document.getElementById("next-link").href;
  }
});
