"""Forms of the coordinator's arena page (issue 20 item 1): the arena's model versions and the draw of its tasks.
They only shape input; the rules (two versions or more, the panel, the sample) live in the services."""
from __future__ import annotations

from django import forms

from inference.models import ModelVersion
from trial.models import Membership, Trial
from trial.permissions import Role


class ArenaVersionsForm(forms.Form):
    model_versions = forms.ModelMultipleChoiceField(
        queryset=ModelVersion.objects.order_by("name"), to_field_name="name", widget=forms.CheckboxSelectMultiple,
        label="Model versions in the arena",
        help_text="Two or more. Until you choose, the arena compares the trial's AI arms' versions. Drafts of a newly "
                  "chosen version are queued for every enrolled case.")

    def clean_model_versions(self):
        chosen = self.cleaned_data["model_versions"]
        if len(chosen) < 2:
            raise forms.ValidationError("Choose two or more model versions: an arena compares drafts in pairs.")
        return list(chosen)


class ArenaDrawForm(forms.Form):
    sample_size = forms.IntegerField(
        required=False, min_value=1, label="Sample size (cases)",
        help_text="Leave empty for every enrolled case with two usable drafts; otherwise that many cases, drawn from "
                  "the trial's secret.")
    experts = forms.ModelMultipleChoiceField(
        queryset=Membership.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Arena experts", help_text="Leave all unticked for every expert of the trial.")

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["experts"]
        field.queryset = (Membership.objects.filter(trial=trial, role=Role.EXPERT).select_related("user")
                          .order_by("user__username"))
        field.label_from_instance = lambda m: m.user.username
