"""How fast filters are parsed and translated, against cel-python compiling the same logic.

For a corpus of realistic AIP-160 filters (and their CEL equivalents), measures in one run:
- cold: our parse + translate (Q and Python predicate), with the cache bypassed, per second;
- celpy: cel-python's `Environment.compile` of the equivalent CEL expressions, per second;
- warm: repeated filters answered from the bounded per-resource cache, per second.

    bin/dev bench bench/filtering.py [--seconds 3]

Targets: cold ≥ 2.5x celpy; warm ≥ 100,000 filters/s. Exits 1 if missed. Needs no database.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")
os.environ.setdefault("FOUNDRY_DEBUG", "1")

import django

django.setup()

import celpy  # noqa: E402

from bench._support import verdict  # noqa: E402
from foundry.filtering import (  # noqa: E402
    BooleanField,
    DurationField,
    EnumField,
    FilterSpec,
    IntegerField,
    ListField,
    MapField,
    StringField,
    TimestampField,
)

# A runs-like resource, as the API will declare it.
SPEC = FilterSpec(
    {
        "agent": StringField(),
        "state": EnumField(choices=("queued", "running", "waiting_approval", "succeeded", "failed", "cancelled")),
        "steps": IntegerField(),
        "tokens": IntegerField(),
        "created_at": TimestampField(),
        "duration": DurationField(nullable=True),
        "approved": BooleanField(),
        "tags": ListField(),
        "labels": MapField(),
        "model.name": StringField(lookup="model_name"),
    }
)

# (AIP-160, CEL) pairs with the same meaning.
CORPUS = [
    ("state = failed", 'state == "failed"'),
    ('agent = "invoice-*" AND state != cancelled', 'agent.startsWith("invoice-") && state != "cancelled"'),
    (
        'created_at > "2026-01-01T00:00:00Z" AND steps >= 3',
        'created_at > timestamp("2026-01-01T00:00:00Z") && steps >= 3',
    ),
    ("state = (failed OR cancelled) tokens > 10000", '(state == "failed" || state == "cancelled") && tokens > 10000'),
    ("labels.env = prod AND NOT approved = true", 'labels["env"] == "prod" && !(approved == true)'),
    ("tags:urgent OR tags:vip", '"urgent" in tags || "vip" in tags'),
    ('duration > 90s AND model.name = "gpt-4o"', 'duration > duration("90s") && model.name == "gpt-4o"'),
    (
        "-state = succeeded AND (steps < 2 OR tokens < 100) AND agent:*",
        '!(state == "succeeded") && (steps < 2 || tokens < 100) && agent != ""',
    ),
    (
        'created_at >= "2026-03-01T00:00:00+01:00" AND created_at < "2026-04-01T00:00:00Z" AND state = running',
        'created_at >= timestamp("2026-03-01T00:00:00+01:00") && created_at < timestamp("2026-04-01T00:00:00Z") '
        '&& state == "running"',
    ),
    (
        'labels:team AND labels.tier != "gold" AND steps > 0',
        '"team" in labels && labels["tier"] != "gold" && steps > 0',
    ),
]


def _rates(works: dict, seconds: float) -> dict[str, float]:
    """Filters/s of each piece of work, run in alternating slices so drift hits all alike."""
    done = dict.fromkeys(works, 0)
    spent = dict.fromkeys(works, 0.0)
    while min(spent.values()) < seconds:
        for name, work in works.items():
            started = time.perf_counter()
            while time.perf_counter() - started < 0.1:
                done[name] += work()
            spent[name] += time.perf_counter() - started
    return {name: done[name] / spent[name] for name in works}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()

    env = celpy.Environment()
    for text, cel in CORPUS:  # every pair must compile on both sides
        SPEC._compile(text)
        env.compile(cel)

    def ours_cold() -> int:
        for text, _ in CORPUS:
            SPEC._compile(text)
        return len(CORPUS)

    def celpy_compile() -> int:
        for _, cel in CORPUS:
            env.compile(cel)
        return len(CORPUS)

    def ours_warm() -> int:
        for text, _ in CORPUS:
            SPEC.compile(text)
        return len(CORPUS)

    rates = _rates({"cold": ours_cold, "celpy": celpy_compile, "warm": ours_warm}, args.seconds)
    cold, cel, warm = rates["cold"], rates["celpy"], rates["warm"]
    print(f"\nFilter compilation, {len(CORPUS)} realistic filters, {args.seconds:.0f}s per measurement, interleaved")
    print(f"  AIP-160 parse + translate (cold)   {cold:>10,.0f} filters/s")
    print(f"  cel-python compile (baseline)      {cel:>10,.0f} filters/s")
    print(f"  AIP-160 from the cache (warm)      {warm:>10,.0f} filters/s")
    print(f"  cold / celpy: {cold / cel:.2f}x")
    print("\nTargets")
    ok = verdict(f"cold ≥ 2.5x celpy ({cold / cel:.2f}x)", cold / cel >= 2.5)
    ok &= verdict(f"warm ≥ 100,000/s ({warm:,.0f}/s)", warm >= 100_000)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
