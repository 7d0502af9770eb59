// ES module. <select data-autosubmit> submits its form on change (no inline handlers: the CSP allows scripts from 'self' only).
document.querySelectorAll("select[data-autosubmit]").forEach((el) => {
  el.addEventListener("change", () => el.form.submit());
});
