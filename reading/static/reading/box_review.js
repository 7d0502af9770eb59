/* The AI-arm reader accepts or rejects each AI box (issue 21 item 1): templates/reading/_box_review.html.
 * Loaded only on AI-arm read pages with boxes (after read.js, which mounts the viewer as window.cxrViewer).
 * - Accept / Reject are toggle buttons (aria-pressed); pressing the pressed one again clears the decision.
 * - Focusing or hovering a row shows the AI boxes and highlights that box on the image; the outlines carry the
 *   decision (accepted: solid green, rejected: dashed red).
 * - The decisions go with the report: read.js's collect() asks form.cxrExtra.box_reviews, and a change is an
 *   "input" on the form, so it is autosaved (and kept on this device) like the rest of the form.
 * - A click on an outline (or Enter on it) moves focus to its row.
 */
const form = document.getElementById("read-form");
const list = document.getElementById("box-review");
const aiEl = document.getElementById("ai-boxes");
const data = JSON.parse(document.getElementById("read-data").textContent);

const decisions = Object.assign({}, (aiEl && JSON.parse(aiEl.textContent).reviews) || {});

/* A newer unsaved copy on this device (read.js restores its text the same way). */
try {
  const local = JSON.parse(window.localStorage.getItem("cxr-read:" + data.public_id) || "null");
  const serverAt = data.autosaved_at ? Date.parse(data.autosaved_at) : 0;
  if (!data.readonly && local && local.dirty && local.editedAt > serverAt && local.report && local.report.box_reviews) {
    Object.keys(decisions).forEach((k) => delete decisions[k]);
    Object.assign(decisions, local.report.box_reviews);
  }
} catch (e) { /* blocked storage: the server's copy stands */ }

form.cxrExtra = Object.assign(form.cxrExtra || {}, {box_reviews: () => Object.assign({}, decisions)});

function outlines() {
  const layer = document.getElementById("viewer-boxes");
  return layer ? Array.from(layer.children) : [];
}

function paintOutlines() {
  for (const el of outlines()) {
    const id = el._box && el._box.id;
    el.classList.toggle("ai-box-accepted", decisions[id] === "accepted");
    el.classList.toggle("ai-box-rejected", decisions[id] === "rejected");
    el.dataset.boxId = id || "";
  }
}

function paintRow(row) {
  const d = decisions[row.dataset.boxId] || "";
  row.dataset.decision = d;
  row.querySelectorAll("button[data-decision]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.decision === d)));
}

function highlight(id) {
  const viewer = window.cxrViewer;
  if (id && viewer && !viewer.boxesShown) viewer.showBoxes(true);
  for (const el of outlines()) el.classList.toggle("ai-box-highlight", !!id && el._box && el._box.id === id);
  list.querySelectorAll(".box-review-item").forEach((row) => row.classList.toggle("current", row.dataset.boxId === id));
}

list.querySelectorAll(".box-review-item").forEach((row) => {
  paintRow(row);
  const id = row.dataset.boxId;
  row.addEventListener("focusin", () => highlight(id));
  row.addEventListener("mouseenter", () => highlight(id));
  row.addEventListener("mouseleave", () => { if (!row.contains(document.activeElement)) highlight(null); });
  row.addEventListener("focusout", (e) => { if (!row.contains(e.relatedTarget)) highlight(null); });
  row.querySelectorAll("button[data-decision]").forEach((b) => b.addEventListener("click", () => {
    if (form.querySelector("fieldset").disabled) return;
    if (decisions[id] === b.dataset.decision) delete decisions[id];
    else decisions[id] = b.dataset.decision;
    paintRow(row);
    paintOutlines();
    form.dispatchEvent(new Event("input", {bubbles: true}));  // read.js: dirty, kept locally, autosaved
  }));
});

/* The viewer rebuilds the outlines when the image changes: paint them again. A click on an outline (or Enter on
 * a focused one) moves to its row, where Accept and Reject are. */
const layer = document.getElementById("viewer-boxes");
function toRow(e) {
  const el = e.target.closest && e.target.closest(".ai-box");
  const row = el && el._box && list.querySelector(`.box-review-item[data-box-id="${CSS.escape(el._box.id)}"]`);
  if (!row) return;
  e.preventDefault();
  row.scrollIntoView({block: "nearest"});
  row.querySelector("button").focus({preventScroll: true});
}
if (layer) {
  new MutationObserver(paintOutlines).observe(layer, {childList: true});
  layer.addEventListener("click", toRow);
  layer.addEventListener("keydown", (e) => { if (e.key === "Enter") toRow(e); });
}
paintOutlines();
