"""The one navigation of every page (issue 17): the same links, in the same order, for the same person in a trial;
what they are depends only on the person's roles in the page's trial (a reader sees their worklist, an expert theirs,
a coordinator the trial's pages, a statistician the analysis). Roles come from trial.permissions.roles_of, cached on
the user by the view's own role check, so the bar costs no query on a page that checked a role."""
from __future__ import annotations

from django import template
from django.urls import reverse

from trial.models import Trial
from trial.permissions import Role, roles_of

register = template.Library()

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


def nav_links(user, trial: Trial | None, path: str = "") -> list[dict]:
    if not isinstance(trial, Trial):
        return []
    roles = roles_of(user, trial)
    links = []
    for label, name, who in LINKS:
        if roles & who:
            url = reverse(name, args=[trial.code])
            links.append({"label": label, "url": url, "current": path == url})
    return links


@register.inclusion_tag("trial/_nav.html", takes_context=True)
def trial_nav(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return {"links": nav_links(user, context.get("trial"), getattr(request, "path", ""))}
