"""Console forms for runs: start one, filter the list, decide an approval."""

from django import forms

from apps.runs.models import Run
from apps.runs.services import MAX_COMMENT_CHARS, MAX_INPUT_CHARS
from foundry.forms import TextareaField


class RunStartForm(forms.Form):
    agent = forms.ChoiceField(help_text="Deployed agents only: a run executes the live version.")
    input = TextareaField(
        max_length=MAX_INPUT_CHARS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What you ask the agent to do.",
    )

    def __init__(self, *args, agents: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [(name, name) for name in agents]


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Run.Status.choices], required=False)
    agent = forms.ChoiceField(required=False)

    def __init__(self, *args, agents: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [("", "Any agent"), *((name, name) for name in agents)]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    step = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    # When the question shown was asked: one asked again since at that step is another question.
    requested_at = forms.DateTimeField(widget=forms.HiddenInput, required=False)
    comment = TextareaField(
        required=False,
        strip=False,  # run_decide judges it, stripped, as for the API and MCP (no max_length on the raw text)
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": MAX_COMMENT_CHARS}),  # the browser's hint
        help_text="Recorded with your decision.",
    )
