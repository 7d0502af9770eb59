/* Shared by every page script (ES module): the CSRF token, JSON posting with one error shape, keyboard guards.
 *
 * postJSON never throws: it answers {ok, status, body, offline, sessionEnded}, so callers branch on what
 * happened (saved, refused, no connection, signed out) instead of on exceptions. */

/** The page's CSRF token, read at each call (a sign-in in place replaces it, see setCsrfToken). */
export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/** Replaces the token in every form of the page (Django rotates it at each sign-in). */
export function setCsrfToken(token) {
  document.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((input) => { input.value = token; });
}

/** True while the user types in a form field: single-key shortcuts must not fire then. */
export function isTyping(el) {
  if (!el) return false;
  const tag = (el.tagName || "").toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || !!el.isContentEditable;
}

/** A plain key press meant for the page: no modifier, not typed into a field. */
export function isPlainKey(e) {
  return !isTyping(e.target) && !e.ctrlKey && !e.metaKey && !e.altKey;
}

/** True when the API refused because nobody is signed in any more (session expired or ended elsewhere).
 *  The API answers 401 (token authentication's challenge, config/settings.py REST_FRAMEWORK). */
export function isSessionEnded(status, body) {
  const code = body && body.code;
  return status === 401 || (status === 403 && (code === "not_authenticated" || code === "authentication_failed"));
}

/** POSTs JSON with the CSRF token; never throws. */
export async function postJSON(url, body, {keepalive = false} = {}) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json"},
      body: JSON.stringify(body),
    });
  } catch (e) {
    return {ok: false, status: 0, body: {}, offline: true, sessionEnded: false};
  }
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  return {
    ok: response.ok, status: response.status, body: data || {}, offline: false,
    sessionEnded: isSessionEnded(response.status, data),
  };
}

/* ---- signing in again in place ----
 * When the session ends mid-task (expired, or signed out in another tab) the page says so and offers a sign-in form
 * over the page; nothing on the page is reloaded, so nothing typed is lost. Django's login view does the work: the
 * form's token comes from the login page, and the token of the new session (Django rotates it at sign-in) from the
 * page the login redirects to. */
let signedIn = null;  // the promise of the sign-in in progress, shared by every caller

function tokenIn(html) {
  const input = new DOMParser().parseFromString(html, "text/html").querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

async function signIn(username, password) {
  const loginUrl = new URL(document.body.dataset.loginUrl || "/accounts/login/", window.location.href);
  const page = await fetch(loginUrl, {credentials: "same-origin"});
  const token = tokenIn(await page.text());
  const response = await fetch(loginUrl, {
    method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": token},
    body: new URLSearchParams({username, password, csrfmiddlewaretoken: token}),
  });
  if (!response.ok || new URL(response.url).pathname === loginUrl.pathname) return false;  // refused: the form again
  const fresh = tokenIn(await response.text());
  if (fresh) setCsrfToken(fresh);
  return true;
}

function signInPanel(resolve) {
  const panel = document.createElement("section");
  panel.id = "session-ended";
  panel.className = "session-ended";
  panel.setAttribute("role", "alertdialog");
  panel.setAttribute("aria-labelledby", "session-ended-title");
  panel.setAttribute("aria-describedby", "session-ended-text");
  panel.innerHTML = `<h2 id="session-ended-title">Your session has ended</h2>
    <p id="session-ended-text">You were signed out (the session timed out or was ended elsewhere). Sign in again
    here to carry on: this page stays as it is and nothing you entered is lost.</p>
    <form class="stack">
      <label>Username <input name="username" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit" class="primary">Sign in and continue</button>
    </form>
    <p class="error" role="alert"></p>`;
  const form = panel.querySelector("form");
  const error = panel.querySelector(".error");
  const current = document.getElementById("current-user");
  if (current) form.username.value = current.textContent.trim();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    let ok = false;
    try {
      ok = await signIn(form.username.value, form.password.value);
    } catch (err) {
      error.textContent = "No connection: try again.";
      return;
    }
    if (!ok) { error.textContent = "That username and password did not match."; form.password.select(); return; }
    panel.remove();
    signedIn = null;
    resolve();
  });
  document.body.appendChild(panel);
  (form.username.value ? form.password : form.username).focus();
}

/** Says the session ended and offers to sign in again in place; resolves once signed in (one panel at a time). */
export function sessionEnded() {
  if (!signedIn) {
    let resolve;
    signedIn = new Promise((r) => { resolve = r; });
    signInPanel(resolve);  // after signedIn is set: the panel's focus fires change events that ask isSignedOut()
  }
  return signedIn;
}

/** True while the sign-in panel is open (callers stop retrying until it resolves). */
export function isSignedOut() {
  return signedIn !== null;
}
