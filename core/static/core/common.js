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
