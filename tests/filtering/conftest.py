import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from foundry.filtering import (
    BooleanField,
    DecimalField,
    DurationField,
    EnumField,
    FilterSpec,
    IntegerField,
    ListField,
    MapField,
    StringField,
    TimestampField,
)
from tests.specimens.models import Specimen

NAMES = ["invoice", "Invoice", "inv-2024", "receipt", "report", "a*b", "quote", "x", "", "ünïcode"]
NOTES = [None, "", "urgent", "later", "Urgent!"]
STATES = ("draft", "active", "archived")
TAGS = ["red", "green", "blue", "urgent"]
LABEL_KEYS = ["env", "team", "tier"]
LABEL_VALUES = ["prod", "dev", "core", ""]
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

SPEC = FilterSpec(
    {
        "name": StringField(),
        "note": StringField(nullable=True),
        "count": IntegerField(nullable=True),
        "price": DecimalField(nullable=True),
        "active": BooleanField(),
        "created_at": TimestampField(nullable=True),
        "elapsed": DurationField(nullable=True),
        "state": EnumField(choices=STATES),
        "tags": ListField(),
        "labels": MapField(),
    }
)


def _rows(seed: int = 7, n: int = 60) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        rows.append(
            {
                "name": rng.choice(NAMES),
                "note": rng.choice(NOTES),
                "count": rng.choice([None, -3, 0, 1, 5, 10, 2**31 - 1]),
                "price": rng.choice([None, Decimal("0.00"), Decimal("9.99"), Decimal("10.00"), Decimal("-1.50")]),
                "active": rng.random() < 0.5,
                "created_at": rng.choice(
                    [None, BASE_TIME, BASE_TIME + timedelta(hours=1), BASE_TIME - timedelta(days=3)]
                ),
                "elapsed": rng.choice([None, timedelta(seconds=90), timedelta(hours=1, minutes=30), timedelta(0)]),
                "state": rng.choice(STATES),
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
                "labels": {k: rng.choice(LABEL_VALUES) for k in rng.sample(LABEL_KEYS, rng.randint(0, 3))},
            }
        )
    return rows


class Specimens(list):
    def __repr__(self) -> str:  # keeps hypothesis' failure reports short
        return f"<{len(self)} specimens>"


@pytest.fixture
def specimens(db) -> Specimens:
    return Specimens(Specimen.objects.bulk_create(Specimen(**row) for row in _rows()))
