"""Run an Agent manifest's sandbox tests locally, through the real runtime (what `forge test` does).

Each test runs as its own thread of the agent's graph, in memory, offline by default: the
`scripted` provider follows the test's `script`. Approval requests are answered with the
test's `approve` (default true) — unless the test expects `status: waiting_approval`, in which
case none is answered and the run is left waiting. Sub-agents need a server, so a `subagent`
call is a tool error here; `http` tools make real requests (declared public hosts only).

`expect` is checked after the run: `status` (default "succeeded"); each `output_contains`
string must occur in the final answer (case-sensitive); each name in `tools_called` must be a
tool whose call went ahead (not denied by a rule nor rejected by an approver), and each name in
`approvals_requested` a tool an approval was asked for — in any order; an empty list there
means "none at all".

A real provider (`openai`, `anthropic`) needs a `ProviderConnection`: its credentials and the
addresses it may reach (`forge` reads them from the environment, docs/forge.md).
"""

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from foundry.runtime.graph import AgentGraph, RunHooks, RunResult
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderSettings, provider_create
from foundry.runtime.tools import ToolOptions


class SandboxError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class

    name: str
    passed: bool
    status: str
    output: str | None = None
    tools_called: list[str] = field(default_factory=list)
    approvals_requested: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: float = 0.0
    reason: str | None = None  # why the run did not succeed, e.g. "max_steps: The run reached …"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProviderConnection:
    """How a sandbox reaches a real provider: its credentials and the addresses it may use."""

    credentials: Mapping | None = field(default=None, repr=False)
    network: NetworkPolicy = field(default_factory=NetworkPolicy)


def _provider(name: str, manifest: Mapping, test: Mapping, connection: ProviderConnection | None):
    model = manifest["spec"]["model"]
    settings = ProviderSettings(
        model=model["name"],
        parameters=dict(model.get("parameters") or {}),
        script=list(test.get("script") or ()),
        credentials=connection.credentials if connection else None,
        network=connection.network if connection else NetworkPolicy(),
    )
    return provider_create(name, settings)


def run_test(
    manifest: dict,
    domain: dict,
    test: dict,
    *,
    provider: str = "scripted",
    on_step: Callable[[dict], None] | None = None,
    tools: ToolOptions | None = None,
    connection: ProviderConnection | None = None,
) -> TestOutcome:
    """Run one sandbox test case. ProviderError if `provider` cannot be used at all."""
    started = time.perf_counter()
    agent = AgentGraph(
        manifest,
        domain,
        provider=_provider(provider, manifest, test, connection),
        tools=tools,
        hooks=RunHooks(on_step=on_step),
    )
    expect = test.get("expect") or {}
    answer_approvals = expect.get("status") != "waiting_approval"
    thread = f"sandbox-{test['name']}-{uuid.uuid4().hex}"
    requested: list[str] = []
    try:
        result = agent.start(thread, test["input"])
        while result.status == "waiting_approval":
            requested.append(result.approval["tool"])
            if not answer_approvals:
                break
            result = agent.resume(thread, approved=test.get("approve", True), by="sandbox", comment="forge test")
    except Exception as exc:  # noqa: BLE001 — like any test runner, report a crashing test as failed
        result = RunResult(status="failed", reason="error", message=f"{type(exc).__name__}: {exc}")
    outcome = _outcome(test["name"], result, requested)
    outcome.failures = _failures(expect, outcome)
    outcome.passed = not outcome.failures
    outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return outcome


def run_tests(
    manifest: dict,
    domain: dict,
    *,
    names: Sequence[str] | None = None,
    provider: str = "scripted",
    on_progress: Callable[[TestOutcome], None] | None = None,
    tools: ToolOptions | None = None,
    connection: ProviderConnection | None = None,
) -> list[TestOutcome]:
    """Run the manifest's tests (only `names`, in the manifest's order, when given)."""
    tests = manifest["spec"].get("tests") or []
    if names is not None:
        unknown = sorted(set(names) - {t["name"] for t in tests})
        if unknown:
            raise SandboxError("test_unknown", f"No test named {', '.join(map(repr, unknown))}.")
        tests = [t for t in tests if t["name"] in set(names)]
    outcomes = []
    for test in tests:
        outcome = run_test(manifest, domain, test, provider=provider, tools=tools, connection=connection)
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(outcome)
    return outcomes


def _outcome(name: str, result: RunResult, requested: list[str]) -> TestOutcome:
    tool_steps = [s for s in result.steps if s["node"] == "tool"]
    return TestOutcome(
        name=name,
        passed=False,
        status=result.status,
        output=result.output,
        tools_called=[s["tool"] for s in tool_steps if s.get("ran")],
        approvals_requested=requested,
        steps=len(result.steps),
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        reason=f"{result.reason}: {result.message}" if result.reason else None,
    )


def _failures(expect: Mapping, outcome: TestOutcome) -> list[str]:
    failures = []
    status = expect.get("status", "succeeded")
    if outcome.status != status:
        why = f" ({outcome.reason})" if outcome.reason else ""
        failures.append(f"status: expected {status!r}, got {outcome.status!r}{why}.")
    for text in expect.get("output_contains") or ():
        if text not in (outcome.output or ""):
            failures.append(f"output_contains: {text!r} is not in the output {_quote(outcome.output)}.")
    for key, seen, verb in (
        ("tools_called", outcome.tools_called, "was not called"),
        ("approvals_requested", outcome.approvals_requested, "had no approval requested"),
    ):
        wanted = expect.get(key)
        if wanted is None:
            continue
        if not wanted and seen:
            failures.append(f"{key}: expected none, got {', '.join(seen)}.")
        for tool in wanted:
            if tool not in seen:
                failures.append(f"{key}: {tool!r} {verb} ({'got ' + ', '.join(seen) if seen else 'none'}).")
    return failures


def _quote(output: str | None) -> str:
    if output is None:
        return "(no output)"
    return repr(output if len(output) <= 200 else output[:199] + "…")
