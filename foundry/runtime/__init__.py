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

import importlib

# The names below, each from its module, imported on first use (PEP 562): a process that needs one
# module (the identity provider key fetch needs network.py) does not load LangGraph (about a second of CPU).
_HOMES = {
    "graph": ("AgentGraph", "Limits", "RunHooks", "RunResult", "RunStateError", "ThreadState"),
    "network": ("FetchError", "NetworkPolicy"),
    "providers": (
        "ModelReply",
        "Provider",
        "ProviderError",
        "ProviderSettings",
        "ScriptedProvider",
        "ToolSpec",
        "Usage",
        "count_tokens",
        "provider_create",
        "provider_register",
    ),
    "sandbox": ("SandboxError", "TestOutcome", "run_test", "run_tests"),
    "tools": ("ToolError", "ToolOptions"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str):
    if (module := _HOME_OF.get(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return value


__all__ = sorted(_HOME_OF)
