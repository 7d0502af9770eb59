"""Core: what every app uses and no app owns: service errors with their error-code enum, the API exception
handler, middleware (CSP, login required), the admin site (superusers only), the one keyed-HMAC helper and the
trial-scoped API base. Imports no app of ours (docs/architecture.md)."""
