"""The console's retention form. It only parses: `retention_policy_set` judges every value."""

from django import forms

from apps.lifecycle.retention import DAYS_FIELDS, MAX_DAYS

LABELS = {
    "runs_days": "Finished runs, with their steps and checkpoints",
    "checkpoints_days": "Checkpoints beyond a finished run's final state",
    "usage_detail_days": "Usage detail, once rolled up",
    "traces_days": "Runs' trace references",
    "exports_days": "Export archives",
    "audit_days": "Audit trail",
}


class RetentionPolicyForm(forms.Form):
    """Each field carries the value the page was rendered with (a hidden `initial-` input): a save
    changes only what its user changed, not what someone else changed since the page was opened
    (a legal hold put on meanwhile, which the page showed off)."""

    audit_legal_hold = forms.BooleanField(
        required=False, label="Audit trail on legal hold (kept whatever its days)", show_hidden_initial=True
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in DAYS_FIELDS:
            self.fields[name] = forms.CharField(
                required=False,
                label=f"{LABELS[name]} (days; empty: for ever)",
                widget=forms.TextInput({"inputmode": "numeric", "placeholder": "for ever"}),
                show_hidden_initial=True,
            )
        self.order_fields([*DAYS_FIELDS, "audit_legal_hold"])

    def values(self) -> dict:
        """What to hand `retention_policy_set`, of the fields changed on the page: whole numbers
        as ints, empty as None, anything else as typed (so the service's code, days_invalid, is
        the verdict)."""
        changed = set(self.changed_data)
        values = {"audit_legal_hold": self.cleaned_data["audit_legal_hold"]} if "audit_legal_hold" in changed else {}
        for name in sorted(changed & set(DAYS_FIELDS)):
            text = self.cleaned_data[name].strip()
            # Past 9 digits, a whole number too large (`days_too_large`), not converted (past
            # 4,300 digits int() itself refuses): MAX_DAYS + 1 stands for it.
            whole = text.isascii() and text.isdigit()
            values[name] = None if not text else (int(text) if len(text) <= 9 else MAX_DAYS + 1) if whole else text
        return values
