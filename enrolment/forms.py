from django import forms


class ExcludeCaseForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the case leaves the trial; audited.")
