"""The agent runtime: an Agent manifest and its pinned DIS run as a LangGraph tool-calling loop.

Pure Python, importable without Django settings, so the server and the `forge` CLI share it.

    providers.py  the model-provider interface, the offline `scripted` provider, the registry
    tools.py      the manifest's tools (dis_query, http, subagent) as the model sees and runs them
    rules.py      DIS business rules applied to tool calls (deny, require_approval, warn)
    network.py    SSRF-safe outbound HTTP for `http` tools
    context.py    the system context: instructions and a compact rendering of the DIS
    graph.py      the graph: model → tools → model, approvals, limits, step records
    sandbox.py    run a manifest's sandbox tests (`forge test`)
"""

from foundry.runtime.graph import AgentGraph, Limits, RunHooks, RunResult, RunStateError, ThreadState
from foundry.runtime.network import FetchError, NetworkPolicy
from foundry.runtime.providers import (
    ModelReply,
    Provider,
    ProviderError,
    ProviderSettings,
    ScriptedProvider,
    ToolSpec,
    Usage,
    count_tokens,
    provider_create,
    provider_register,
)
from foundry.runtime.sandbox import SandboxError, TestOutcome, run_test, run_tests
from foundry.runtime.tools import ToolError, ToolOptions

__all__ = [
    "AgentGraph",
    "FetchError",
    "Limits",
    "ModelReply",
    "NetworkPolicy",
    "Provider",
    "ProviderError",
    "ProviderSettings",
    "RunHooks",
    "RunResult",
    "RunStateError",
    "SandboxError",
    "ScriptedProvider",
    "TestOutcome",
    "ThreadState",
    "ToolError",
    "ToolOptions",
    "ToolSpec",
    "Usage",
    "count_tokens",
    "provider_create",
    "provider_register",
    "run_test",
    "run_tests",
]
