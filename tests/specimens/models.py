from django.contrib.postgres.fields import ArrayField
from django.db import models


class Specimen(models.Model):
    name = models.CharField(max_length=100)
    note = models.CharField(max_length=100, null=True)  # noqa: DJ001 - nullable strings are under test
    count = models.IntegerField(null=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(null=True)
    elapsed = models.DurationField(null=True)
    state = models.CharField(max_length=20)
    tags = ArrayField(models.CharField(max_length=20), default=list)
    labels = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name

    def as_record(self) -> dict:
        return {f.name: getattr(self, f.name) for f in self._meta.fields}
