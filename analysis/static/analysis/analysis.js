// The analysis page (ES module): polls the status of runs in progress, then reloads (kept out of the page for the CSP).
const rows = Array.from(document.querySelectorAll("tr[data-status-url]")).filter(
  (tr) => tr.querySelector("[data-role=bar]"));
function poll() {
  Promise.all(rows.map((tr) => fetch(tr.dataset.statusUrl, {credentials: "same-origin"})
    .then((r) => r.json()).then((d) => {
      tr.querySelector("[data-role=bar]").style.width = d.progress + "%";
      tr.querySelector("[data-role=pct]").textContent = d.progress + "%";
      tr.querySelector("[data-role=message]").textContent = d.message;
      const st = tr.querySelector("[data-role=status]");
      st.textContent = d.status; st.className = "pill " + d.status;
      return d.status;
    }).catch(() => "running"))).then((states) => {
      if (states.every((s) => s === "done" || s === "failed")) { window.location.reload(); }
      else { setTimeout(poll, 1000); }
    });
}
setTimeout(poll, 1000);
