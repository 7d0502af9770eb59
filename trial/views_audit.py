"""The audit viewer and the access review (issue 18 items 4 and 5): coordinators' pages, class-based and thin;
reads and permission checks are in trial.selectors."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views import View

from . import audit, selectors, signatures
from .forms import AuditFilterForm
from .models import Trial


class TrialPageMixin:
    """Loads the URL's trial; the selectors check the role (and blinding) for every read."""

    def get_trial(self) -> Trial:
        return get_object_or_404(Trial, code=self.kwargs["trial_code"])


def _filters(request, trial: Trial) -> tuple[AuditFilterForm, selectors.AuditFilter]:
    """The filter form and the filters it gives (the choices' selector checks the role and blinding first)."""
    form = AuditFilterForm(request.GET or None, choices=selectors.audit_filter_choices(request.user, trial))
    if not form.is_bound or not form.is_valid():
        return form, selectors.AuditFilter()
    d = form.cleaned_data
    return form, selectors.AuditFilter(person=d["person"], object_type=d["object_type"], action=d["action"],
                                       since=d["since"], until=d["until"])


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(filename: str, header: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _iso(value) -> str:
    return value.isoformat() if value else ""


class AuditLogView(TrialPageMixin, View):
    """Filters (person, object type, action, UTC dates), 50 entries a page, links to each entry's detail."""

    def get(self, request, trial_code: str):
        trial = self.get_trial()
        form, filters = _filters(request, trial)
        entries = selectors.audit_entries(request.user, trial, filters)
        page = Paginator(entries, 50).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        return render(request, "trial/audit.html", {"trial": trial, "entries": page, "form": form,
                                                    "query": query.urlencode()})

    def post(self, request, trial_code: str):
        return self.get(request, trial_code)


class AuditEntryView(TrialPageMixin, View):
    def get(self, request, trial_code: str, entry_id: int):
        trial = self.get_trial()
        entry = selectors.audit_entry(request.user, trial, entry_id)
        return render(request, "trial/audit_entry.html", {
            "trial": trial, "entry": entry, "changes": audit.field_changes(entry),
            "hash_ok": audit.entry_hash_ok(entry),
            "signatures": [(s, signatures.signature_valid(s)) for s in entry.signatures.select_related("signer")],
        })


AUDIT_CSV_HEADER = ["id", "chain", "sequence", "at_utc", "actor_id", "actor", "action", "object_type", "object_id",
                    "before", "after", "reason", "prev_hash", "hash"]


class AuditExportView(TrialPageMixin, View):
    """The filtered entries as CSV, each with its chain position, previous hash and hash (so an exported row can be
    checked against the chain)."""

    def get(self, request, trial_code: str):
        trial = self.get_trial()
        _form, filters = _filters(request, trial)
        entries = selectors.audit_entries(request.user, trial, filters).iterator(chunk_size=2000)
        rows = ([e.pk, e.chain, e.sequence, _iso(e.at), e.actor_id, e.actor_name, e.action, e.object_type,
                 e.object_id, e.before, e.after, e.reason, e.prev_hash, e.hash] for e in entries)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        return csv_response(f"audit-{trial.code}-{stamp}.csv", AUDIT_CSV_HEADER, rows)


class AuditVerifyView(TrialPageMixin, View):
    """POST: run verify_audit's check now and show the result."""

    def post(self, request, trial_code: str):
        trial = self.get_trial()
        check = selectors.verify_audit_for(request.user, trial)
        return render(request, "trial/audit_verify.html", {"trial": trial, "check": check, "at": timezone.now()},
                      status=200)


class RowHistoryView(TrialPageMixin, View):
    """Every write the database triggers saw, with old and new values: the setup tables (the default) or one of the
    trial's record tables (reads, amendments, ratings, drafts; paged in the database), filtered by row and kind of
    write, optionally only those made outside the application (raw SQL, bulk updates from a shell)."""

    def get(self, request, trial_code: str):
        trial = self.get_trial()
        outside = request.GET.get("outside") == "1"
        table = request.GET.get("table", "")
        filters = selectors.RowFilter(object_id=request.GET.get("row", "").strip(),
                                      label=request.GET.get("label", ""), outside_app_only=outside)
        if table in selectors.RECORD_TABLES:
            page = selectors.record_history(request.user, trial, table, filters, page=request.GET.get("page"))
        else:
            table = ""
            changes = [c for c in selectors.row_history(request.user, trial, outside_app_only=outside)
                       if (not filters.object_id or c.object_id == filters.object_id)
                       and (filters.label not in selectors.ROW_LABELS or c.label == filters.label)]
            page = Paginator(changes, selectors.ROW_PAGE_SIZE).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        return render(request, "trial/row_history.html", {
            "trial": trial, "changes": page, "outside": outside, "table": table, "filters": filters,
            "tables": list(selectors.RECORD_TABLES), "labels": selectors.ROW_LABELS, "query": query.urlencode()})


ACCESS_CSV_HEADER = ["username", "name", "role", "center", "granted_at_utc", "granted_by", "removed_at_utc",
                     "removed_by", "removal_reason", "enrolled_at_utc", "account_active", "last_login_utc"]


class AccessReviewView(TrialPageMixin, View):
    def get(self, request, trial_code: str):
        trial = self.get_trial()
        rows = selectors.access_review(request.user, trial)
        return render(request, "trial/access_review.html", {"trial": trial, "rows": rows, "now": timezone.now()})


class AccessReviewExportView(TrialPageMixin, View):
    def get(self, request, trial_code: str):
        trial = self.get_trial()
        rows = ([r.username, r.name, r.role, r.center, _iso(r.granted_at), r.granted_by, _iso(r.removed_at),
                 r.removed_by, r.removal_reason, _iso(r.enrolled_at), "yes" if r.is_active else "no",
                 _iso(r.last_login)] for r in selectors.access_review(request.user, trial))
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        return csv_response(f"access-review-{trial.code}-{stamp}.csv", ACCESS_CSV_HEADER, rows)
