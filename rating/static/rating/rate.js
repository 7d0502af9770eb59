/* Blinded rating page: image viewer, autosave, resume and one submit (rating/blinded_task.js, shared with the arena).
   Everything it knows comes from the #rating-config JSON and the rating API (both blinded server-side). */
import {mountViewer} from "../imaging/viewer.js";
import {mountBlindedTask, radio} from "./blinded_task.js";

var cfg = JSON.parse(document.getElementById("rating-config").textContent);
var form = document.getElementById("rating-form");

function answer() {
  var a = {quality_a: radio(form, "quality_a"), comment: form.comment.value};
  if (cfg.kind === "pair") {
    a.preference = radio(form, "preference");
    a.quality_b = radio(form, "quality_b");
  }
  if (cfg.ask_guess) a.blinding_guess = radio(form, "blinding_guess");
  ["quality_a", "quality_b"].forEach(function (k) { if (a[k] !== null && a[k] !== undefined) a[k] = parseInt(a[k], 10); });
  return a;
}

function missing(a) {
  var m = [];
  if (cfg.kind === "pair" && !a.preference) m.push("a preference");
  if (a.quality_a == null) m.push("a quality score for report A");
  if (cfg.kind === "pair" && a.quality_b == null) m.push("a quality score for report B");
  if (cfg.ask_guess && !a.blinding_guess) m.push("your guess of which report was written with AI assistance");
  return m;
}

window.ratingViewer = mountViewer(cfg.images);
mountBlindedTask({cfg: cfg, form: form, storeKey: "rating:" + cfg.id, submitId: "submit-rating", answer: answer,
                  missing: missing, noun: "rating"});
