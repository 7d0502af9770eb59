/* Standalone arena page (issue 20 item 1): two drafts as A and B, image viewer, autosave, resume, one submit
   (rating/blinded_task.js, shared with the rating page).
   Everything it knows comes from the #arena-config JSON and the arena API (both blinded server-side).
   Keys (outside text fields): a, b, t choose A, B or tie. */
import {isTyping} from "../core/common.js";
import {mountViewer} from "../imaging/viewer.js";
import {mountBlindedTask, radio} from "./blinded_task.js";

var cfg = JSON.parse(document.getElementById("arena-config").textContent);
var form = document.getElementById("arena-form");

function answer() {
  var a = {preference: radio(form, "preference"), quality_a: radio(form, "quality_a"),
           quality_b: radio(form, "quality_b"), comment: form.comment.value};
  ["quality_a", "quality_b"].forEach(function (k) { if (a[k] !== null) a[k] = parseInt(a[k], 10); });
  return a;
}

function missing(a) { return a.preference ? [] : ["a preference (A, B or tie)"]; }

window.arenaViewer = mountViewer(cfg.images);
var task = mountBlindedTask({cfg: cfg, form: form, storeKey: "arena:" + cfg.id, submitId: "submit-arena",
                             answer: answer, missing: missing, noun: "judgement"});

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
  task.clearError();
  task.schedule();
}

if (!cfg.readonly) document.addEventListener("keydown", onKey, true);
