from django import forms
from django.contrib.auth import get_user_model

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
    expert_panel_size = forms.IntegerField(min_value=1, max_value=50, initial=5)
    preference_majority = forms.IntegerField(min_value=1, max_value=50, initial=3)

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
        if data.get("preference_majority") and data.get("expert_panel_size"):
            if data["preference_majority"] > data["expert_panel_size"]:
                self.add_error("preference_majority", "The majority cannot exceed the panel size.")
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
