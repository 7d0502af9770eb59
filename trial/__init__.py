"""The trial: trials, centers, arms, people (memberships and roles), cases, the sealed allocation list and its
reveal at enrolment, trial status and lock, and the hash-chained audit log. The base of the domain apps: it imports
no app above it, and announces enrolments as signals (trial/signals.py) for the enrolment workflow to act on
(docs/architecture.md)."""
