from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator, MinValueValidator

from .models import Center, Membership, Signature, Trial

User = get_user_model()


class TrialForm(forms.Form):
    code = forms.SlugField(max_length=40, label="Protocol code", help_text="e.g. NCT07117266")
    title = forms.CharField(max_length=300)
    design = forms.ChoiceField(choices=Trial.Design.choices, initial=Trial.Design.PAIRED_BY_CASE)
    findings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One finding per line as code: label. Leave empty for the six default findings.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(setting_fields())
        # A new trial has no experts yet: a small panel (raised later in the settings) and its majority.
        self.fields["expert_panel_size"].initial, self.fields["preference_majority"].initial = 3, 2

    def clean_findings(self):
        raw = self.cleaned_data["findings"].strip()
        if not raw:
            return None
        out = []
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            code, _, label = line.partition(":")
            if not code.strip():
                raise forms.ValidationError(f"Line {n}: missing finding code.")
            out.append({"code": code.strip(), "label": label.strip()})
        return out

    def clean(self):
        data = super().clean()
        _fill_missing(self, data)
        _check_panel(self, data, None)
        return data


# -- trial settings (issue 17): every setting, with help text and defaults, on the new-trial form and the editor --
SETTING_FIELDS = (
    "expert_panel_size", "preference_majority", "experts_off_own_center", "ask_blinding_guess", "washout_days",
    "overdue_after_days", "prefill_draft_findings", "ood_action", "ood_threshold", "allow_retrieval_baseline",
    "require_signatures", "sign_submissions", "similar_cases_k", "similar_cases_encoder", "similar_cases_weights",
    "date_policy", "keep_identity_key", "allowed_modalities",
)
# Help for the settings whose model field has none (the model's own help text is used for the rest).
SETTING_HELP = {
    "expert_panel_size": "Experts who rate each case. At most the number of experts in the trial; a shorter panel "
                         "is topped up when an expert joins.",
    "preference_majority": "Experts of the panel who must prefer one report for the case to count as preferred; "
                           "usually more than half the panel.",
    "experts_off_own_center": "Experts never rate cases of their own center.",
    "washout_days": "Crossover design: days between a reader's two reads of the same case.",
    "date_policy": "Dates in imported DICOM files are shifted by a per-patient offset, or removed.",
    "keep_identity_key": "Keep a key from pseudonymous case codes back to the original patient ids (held "
                         "separately; only for trials that must re-identify).",
    "allowed_modalities": "Modalities accepted besides CR and DX, separated by commas (e.g. DR). Usually none.",
    "sign_submissions": "Readers and experts sign each submission with their password (meaning: authorship).",
    "similar_cases_k": "AI-arm readers see this many similar cases of the reference library (0 = off, at most 10).",
    "similar_cases_encoder": "How similarity is computed: image (no weights) or xrv_densenet (local weights).",
    "similar_cases_weights": "Local path of the xrv_densenet weights file (needed for that encoder).",
}
SETTING_LABELS = {
    "expert_panel_size": "Expert panel size", "preference_majority": "Preference majority",
    "experts_off_own_center": "Keep experts off their own center's cases", "washout_days": "Washout (days)",
    "overdue_after_days": "Overdue after (days)", "ood_action": "Out-of-distribution action",
    "ood_threshold": "Out-of-distribution threshold", "allow_retrieval_baseline": "Allow the retrieval baseline",
    "prefill_draft_findings": "Drafts pre-fill the finding choices", "require_signatures": "Require signatures",
    "ask_blinding_guess": "Ask experts to guess the arm", "date_policy": "Date policy",
    "keep_identity_key": "Keep an identity key", "allowed_modalities": "Extra modalities",
    "sign_submissions": "Sign each submission", "similar_cases_k": "Similar cases shown",
    "similar_cases_encoder": "Similar-case encoder", "similar_cases_weights": "Encoder weights (local path)",
}


class ModalitiesField(forms.CharField):
    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        raw = super().to_python(value) or ""
        out = [m.strip().upper() for m in raw.replace(";", ",").split(",") if m.strip()]
        for m in out:
            if not m.isalnum() or len(m) > 4:
                raise forms.ValidationError(f"{m!r} is not a DICOM modality code (e.g. DR).")
        return out


def setting_fields() -> dict[str, forms.Field]:
    """Form fields for every trial setting, from the model (types, choices, defaults as initial values)."""
    fields = forms.fields_for_model(Trial, fields=[f for f in SETTING_FIELDS if f != "allowed_modalities"])
    fields["allowed_modalities"] = ModalitiesField(required=False, initial="")
    for name, field in fields.items():
        field.label = SETTING_LABELS.get(name, field.label)
        field.help_text = SETTING_HELP.get(name) or field.help_text
        if isinstance(field, forms.IntegerField) and not isinstance(field, forms.FloatField):
            low = 0 if name == "washout_days" else 1
            field.validators += [MinValueValidator(low), MaxValueValidator(365 if "days" in name else 50)]
            field.widget.attrs.update(min=low, max=365 if "days" in name else 50)
        if not isinstance(field, forms.BooleanField):
            field.required = False  # left empty: the default (new trial) or the current value (editor)
    return {name: fields[name] for name in SETTING_FIELDS}


def _fill_missing(form: forms.Form, data: dict) -> None:
    for name in SETTING_FIELDS:
        if data.get(name) in (None, "") and name in form.fields and name != "allowed_modalities":
            value = form.initial.get(name, form.fields[name].initial)
            # a field with no initial value (a text setting such as a weights path) takes the model's default
            data[name] = Trial._meta.get_field(name).get_default() if value is None else value


def _check_panel(form: forms.Form, data: dict, experts: int | None) -> None:
    panel, majority = data.get("expert_panel_size"), data.get("preference_majority")
    if panel and majority and majority > panel:
        form.add_error("preference_majority", "The majority cannot exceed the panel size.")
    if panel and experts and panel > experts:
        form.add_error("expert_panel_size", f"The panel cannot be larger than the trial's {experts} expert(s); "
                                            "add experts first.")


class SettingsForm(forms.Form):
    """The coordinator's settings editor: every setting, the current values, and a reason for the audit log."""

    title = forms.CharField(max_length=300)
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 50}),
                             help_text="Why the settings change (kept in the audit log).")

    def __init__(self, *args, trial: Trial, **kwargs):
        initial = {"title": trial.title, **{f: getattr(trial, f) for f in SETTING_FIELDS}}
        super().__init__(*args, initial=initial, **kwargs)
        for name, field in setting_fields().items():
            self.fields[name] = field
        self.fields["reason"] = self.fields.pop("reason")  # last
        self.experts = trial.memberships.filter(role=Membership.Role.EXPERT).count()
        self.fields["expert_panel_size"].help_text += f" This trial has {self.experts} expert(s)."

    def clean(self):
        data = super().clean()
        _fill_missing(self, data)
        _check_panel(self, data, self.experts)
        return data


class CenterForm(forms.Form):
    code = forms.SlugField(max_length=40)
    name = forms.CharField(max_length=200)


class ArmForm(forms.Form):
    code = forms.SlugField(max_length=40, help_text="e.g. unassisted or ai_assisted")
    name = forms.CharField(max_length=200)
    is_ai = forms.BooleanField(required=False, label="AI-assisted (readers see the model's draft)")
    ratio = forms.IntegerField(min_value=1, max_value=10, initial=1)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing user, or a new one to create")
    email = forms.EmailField(required=False)
    password = forms.CharField(required=False, widget=forms.PasswordInput, help_text="Only for a new user")
    # aria-labels: the trial page lays these out inline, without <label> elements.
    role = forms.ChoiceField(choices=Membership.Role.choices, widget=forms.Select(attrs={"aria-label": "Role"}))
    center = forms.ModelChoiceField(queryset=Center.objects.none(), required=False,
                                    widget=forms.Select(attrs={"aria-label": "Center"}))
    experience = forms.ChoiceField(choices=Membership.Experience.choices, required=False,
                                   widget=forms.Select(attrs={"aria-label": "Experience"}))

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = trial.centers.all()


class CaseForm(forms.Form):
    code = forms.CharField(max_length=64, label="Case code")
    center = forms.ModelChoiceField(queryset=Center.objects.none(), widget=forms.Select(attrs={"aria-label": "Center"}))

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = trial.centers.all()


class AllocationListForm(forms.Form):
    block_sizes = forms.CharField(
        required=False,
        help_text="At least two, comma-separated, each a multiple of the ratio total; empty for the default "
                  "(e.g. 2,4,6). Hidden from every page until lock.",
    )
    slots_per_stratum = forms.IntegerField(min_value=1, max_value=100000, required=False)
    stratify_by_experience = forms.BooleanField(required=False, help_text="Readers only")
    # Electronic signature of the sealing, where the trial requires signatures (trial.signatures).
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False)
    meaning = forms.ChoiceField(required=False, choices=Signature.Meaning.choices, initial=Signature.Meaning.APPROVAL)

    def clean_block_sizes(self):
        raw = self.cleaned_data["block_sizes"].strip()
        if not raw:
            return None
        try:
            return [int(x) for x in raw.split(",") if x.strip()]
        except ValueError as exc:
            raise forms.ValidationError("Block sizes must be whole numbers separated by commas.") from exc


class StatusForm(forms.Form):
    to_status = forms.ChoiceField(choices=Trial.Status.choices)
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Required to lock, and whenever work is outstanding; audited.")
    # Electronic signature, where the trial requires one for the step (trial.signatures).
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False)
    meaning = forms.ChoiceField(required=False, choices=Signature.Meaning.choices, initial=Signature.Meaning.APPROVAL)


class AuditFilterForm(forms.Form):
    """The audit viewer's filters (GET); choices are what occurs in the trial's log (selectors.audit_filter_choices)."""

    person = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Object type")
    action = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, choices: dict[str, list[tuple[str, str]]], **kwargs):
        super().__init__(*args, **kwargs)
        for name, options in choices.items():
            self.fields[name].choices = [("", "any")] + list(options)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The date range ends before it starts.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Kept in the audit log.")


class CenterEditForm(ReasonForm):
    code = forms.SlugField(max_length=40)
    name = forms.CharField(max_length=200)


class ArmEditForm(ReasonForm):
    name = forms.CharField(max_length=200)
    ratio = forms.IntegerField(min_value=1, max_value=10)


class MemberEditForm(ReasonForm):
    center = forms.ModelChoiceField(queryset=Center.objects.none(), required=False)
    experience = forms.ChoiceField(choices=Membership.Experience.choices, required=False)

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = trial.centers.all()
