"""How fast Domain (DIS) and Agent documents are validated, against plain PyYAML + jsonschema.

Builds in memory a ~1,000-line Agent manifest (100 tools, 30 sandbox tests, long instructions) and
the large domain it pins, then measures in one run, interleaved so drift hits all alike:
- validate() of the manifest, with a resolver answering its domain (as the server and `forge` do);
- validate() of the domain itself;
- the baseline: yaml.safe_load + jsonschema's Draft202012Validator.iter_errors of the same texts
  (less work than ours: no positions, no duplicate-key or tag checks, no semantic checks);
- refusing a billion-laughs document, beside yaml.safe_load + jsonschema of the same bomb (which
  accepts it with its aliases left shared, still armed), and beside json.dumps of what safe_load
  returns for a 5-level bomb (the first thing that walks it expands it; at 9 levels, 10,000x that).

    bin/dev bench bench/validation.py [--rounds 15]

Targets: manifest median ≤ 50 ms; billion laughs refused in ≤ 10 ms (median). Exits 1 if missed.
Needs no database.
"""

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jsonschema
import yaml

from bench._support import verdict
from foundry.manifests import Resolution, schema, validate

ENTITIES = 50
TOOLS = 100
TESTS = 30
INSTRUCTION_LINES = 150
BOMB_LEVELS = 9  # 10**9 strings once expanded
BASELINE_BOMB_LEVELS = 5  # what json.dumps of safe_load's result is measured on


def domain_source() -> str:
    """A large domain: entities chained by references, a relationship and a rule per entity, a glossary."""
    lines = [
        "# A large domain: many entities, relationships and rules.",
        "apiVersion: foundry/v1",
        "kind: Domain",
        "metadata:",
        "  name: enterprise",
        "  description: Everything the business keeps records of.",
        "spec:",
        "  entities:",
    ]
    for e in range(ENTITIES):
        lines += [f"    entity_{e}:", f"      description: Records of kind {e}.", "      key: id", "      fields:"]
        lines.append("        id: {type: string, required: true}")
        if e:
            lines.append(f"        parent: {{type: reference, entity: entity_{e - 1}}}")
        lines += [
            "        amount: {type: decimal}",
            "        count: {type: integer}",
            "        status: {type: enum, values: [open, pending, closed]}",
            "        active: {type: boolean}",
            "        due: {type: date}",
            "        created_at: {type: datetime}",
            "        tags: {type: list, items: {type: string}}",
            "        owner: {type: string, description: Who answers for it.}",
            "        note: {type: string}",
        ]
    lines.append("  relationships:")
    for e in range(1, ENTITIES):
        lines += [
            f"    - name: child_of_{e}",
            f"      from: entity_{e}",
            f"      to: entity_{e - 1}",
            "      via: parent",
            "      cardinality: many_to_one",
        ]
    lines.append("  rules:")
    for e in range(ENTITIES):
        lines += [
            f"    - name: rule-{e}",
            f"      entity: entity_{e}",
            f'      when: amount > {1000 + e} AND status = "open" AND NOT tags:frozen',
            "      then: require_approval",
        ]
    lines.append("  glossary:")
    lines += [f"    term {t}: What term {t} means to the business." for t in range(40)]
    return "\n".join(lines) + "\n"


def agent_source() -> str:
    """A ~1,000-line manifest: long instructions, many DIS-query and HTTP tools, many sandbox tests."""
    lines = [
        "apiVersion: foundry/v1",
        "kind: Agent",
        "metadata:",
        "  name: operations-desk",
        "  project: benchmarks",
        "  description: Answers questions about every kind of record.",
        "  labels:",
        "    team: platform",
        "spec:",
        "  domain:",
        "    name: enterprise",
        "    version: 3",
        "  model:",
        "    provider: scripted",
        "    name: scripted-1",
        "    parameters:",
        "      temperature: 0.2",
        "  instructions: |",
    ]
    lines += [
        f"    Step {i}: read the request, look the records up and answer plainly." for i in range(INSTRUCTION_LINES)
    ]
    lines.append("  tools:")
    for t in range(TOOLS):
        if t % 4 == 3:
            lines += [
                f"    - name: call_service_{t}",
                "      type: http",
                f"      description: Call service {t}.",
                "      method: GET",
                f"      url: https://svc{t}.example.com/v1/items/{{id}}",
                f"      hosts: [svc{t}.example.com]",
                "      timeout_seconds: 10",
            ]
        else:
            lines += [
                f"    - name: find_{t}",
                "      type: dis_query",
                f"      entity: entity_{t % ENTITIES}",
                f"      description: Find records of kind {t % ENTITIES}.",
                "      max_results: 20",
            ]
    lines += ["  approvals:", "    tools: [call_service_3, call_service_7]", "  limits:", "    max_steps: 20"]
    lines += ["    max_tokens: 50000", "    timeout_seconds: 300", "  tests:"]
    for t in range(TESTS):
        tool = f"find_{(t * 4) % TOOLS}"
        lines += [
            f"    - name: case-{t}",
            f"      input: Handle request {t}.",
            "      script:",
            f"        - tool_call: {{tool: {tool}, arguments: {{filter: 'id = \"R-{t}\"'}}}}",
            f"        - respond: Request {t} handled.",
            "      expect:",
            "        status: succeeded",
            f"        tools_called: [{tool}]",
            "        output_contains: [handled]",
        ]
    return "\n".join(lines) + "\n"


def billion_laughs(levels: int) -> str:
    names = "abcdefghijklmnop"
    lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for previous, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _medians(works: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each piece of work, run in turn once per round."""
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(rounds):
        for name, work in works.items():
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _row(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<48}{seconds * 1000:>9.2f} ms" + (f"  ({note})" if note else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="measurements of each piece of work")
    args = parser.parse_args()

    domain, agent = domain_source(), agent_source()
    dis = validate(domain, "domains/enterprise.yaml")
    if not dis.ok:
        sys.exit(f"the generated domain is invalid: {dis.problems[:3]}")
    dis_data = dis.data

    def resolver(name: str, version: int) -> Resolution:
        return Resolution(data=dis_data)

    manifest = validate(agent, "agents/operations-desk.yaml", domains=resolver)
    if not manifest.ok:
        sys.exit(f"the generated manifest is invalid: {manifest.problems[:3]}")
    bomb, small_bomb = billion_laughs(BOMB_LEVELS), billion_laughs(BASELINE_BOMB_LEVELS)
    refused = validate(bomb).problems
    if [p.code for p in refused] != ["yaml_alias_expansion"]:
        sys.exit(f"the billion laughs was not refused as expected: {refused}")

    agent_schema = jsonschema.Draft202012Validator(schema("agent"))
    domain_schema = jsonschema.Draft202012Validator(schema("domain"))
    works = {
        "manifest": lambda: validate(agent, "agents/operations-desk.yaml", domains=resolver),
        "domain": lambda: validate(domain, "domains/enterprise.yaml"),
        "manifest baseline": lambda: list(agent_schema.iter_errors(yaml.safe_load(agent))),
        "domain baseline": lambda: list(domain_schema.iter_errors(yaml.safe_load(domain))),
        "bomb": lambda: validate(bomb),
        "bomb baseline": lambda: list(domain_schema.iter_errors(yaml.safe_load(bomb))),
        "small bomb expanded": lambda: json.dumps(yaml.safe_load(small_bomb)),
    }
    _medians(works, 1)  # warm up: compiled schemas, the filter parser
    m = _medians(works, args.rounds)

    agent_lines, domain_lines = agent.count("\n"), domain.count("\n")
    print(f"\nValidation, median of {args.rounds} interleaved rounds")
    print(f"  Agent manifest: {agent_lines:,} lines, {TOOLS} tools, {TESTS} tests")
    print(f"  its domain: {domain_lines:,} lines, {ENTITIES} entities, {ENTITIES - 1} relationships, {ENTITIES} rules")
    _row("validate(manifest), its domain resolved", m["manifest"])
    _row("yaml.safe_load + jsonschema (baseline)", m["manifest baseline"])
    print(f"  baseline / ours: {m['manifest baseline'] / m['manifest']:.1f}x")
    _row("validate(domain)", m["domain"])
    _row("yaml.safe_load + jsonschema (baseline)", m["domain baseline"])
    print(f"  baseline / ours: {m['domain baseline'] / m['domain']:.1f}x")
    _row("both documents, one after the other", m["manifest"] + m["domain"])
    print(f"\nBillion laughs ({BOMB_LEVELS} levels: 10^{BOMB_LEVELS} strings once expanded)")
    _row(f"validate(): refused, {refused[0].code}", m["bomb"])
    _row("yaml.safe_load + jsonschema of the same bomb", m["bomb baseline"], "accepted, aliases shared: still armed")
    print(f"  baseline / ours: {m['bomb baseline'] / m['bomb']:.1f}x")
    _row(
        f"json.dumps(yaml.safe_load(...)), {BASELINE_BOMB_LEVELS}-level bomb",
        m["small bomb expanded"],
        f"at {BOMB_LEVELS} levels ~10^{BOMB_LEVELS - BASELINE_BOMB_LEVELS}x that: not run",
    )
    print("\nTargets")
    ok = verdict(f"manifest with its domain ≤ 50 ms ({m['manifest'] * 1000:.1f} ms)", m["manifest"] <= 0.050)
    ok &= verdict(f"billion laughs refused ≤ 10 ms ({m['bomb'] * 1000:.2f} ms)", m["bomb"] <= 0.010)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
