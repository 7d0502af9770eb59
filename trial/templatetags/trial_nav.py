"""The one navigation of every page (issue 17): the same links, in the same order, for the same person in a trial;
what they are depends only on the person's roles in the page's trial (a reader sees their worklist, an expert theirs,
a coordinator the trial's pages, a statistician the analysis). Roles come from trial.permissions.roles_of, cached on
the user by the view's own role check, so the bar costs no query on a page that checked a role. A link whose page
refuses blinded participants (trial.blinding.require_not_blinded) is not shown to them: ``shows_link`` decides."""
from __future__ import annotations

from django import template
from django.urls import reverse

from trial.blinding import is_blinded_participant
from trial.models import Trial
from trial.permissions import Role, roles_of

register = template.Library()

# Pages that answer 403 to a blinded participant (a coordinator who also reads or rates: trial/blinding.py), so not
# linked for them (tests/trial/test_navigation.py opens every link such a coordinator is shown).
UNBLINDED_ONLY = frozenset({"inference:drafts", "arena:setup", "trial:allocations", "trial:audit", "analysis:page"})

# (label, URL name, roles that see it), in the bar's order.
LINKS = (
    ("Trial", "trial:detail", {Role.COORDINATOR}),
    ("Settings", "trial:settings", {Role.COORDINATOR}),
    ("Import cases", "imports:upload", {Role.COORDINATOR}),
    ("Drafts", "inference:drafts", {Role.COORDINATOR}),
    ("Arena", "arena:setup", {Role.COORDINATOR}),
    ("Allocations", "trial:allocations", {Role.COORDINATOR}),
    ("Audit log", "trial:audit", {Role.COORDINATOR}),
    ("Access review", "trial:access_review", {Role.COORDINATOR}),
    ("Analysis", "analysis:page", {Role.COORDINATOR, Role.STATISTICIAN}),
    ("Worklist", "reading:worklist", {Role.READER}),
    ("Rating worklist", "rating:worklist", {Role.EXPERT}),
)


def shows_link(user, trial: Trial, name: str, who: set[str]) -> bool:
    """The rule of one link: the person holds a role that sees it, and its page would not refuse them as a blinded
    participant (the page's own check, trial.blinding)."""
    if not roles_of(user, trial) & who:
        return False
    return name not in UNBLINDED_ONLY or not is_blinded_participant(user, trial)


def nav_links(user, trial: Trial | None, path: str = "") -> list[dict]:
    if not isinstance(trial, Trial):
        return []
    links = []
    for label, name, who in LINKS:
        if shows_link(user, trial, name, who):
            url = reverse(name, args=[trial.code])
            links.append({"label": label, "url": url, "current": path == url})
    return links


@register.inclusion_tag("trial/_nav.html", takes_context=True)
def trial_nav(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return {"links": nav_links(user, context.get("trial"), getattr(request, "path", ""))}
