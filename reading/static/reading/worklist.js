/* The reader's worklist: the n key opens the next read. */
import {isPlainKey} from "../core/common.js";

document.addEventListener("keydown", (e) => {
  if (e.key !== "n" || !isPlainKey(e)) return;
  const next = document.getElementById("next-read");
  if (next) { e.preventDefault(); window.location.href = next.href; }
});
