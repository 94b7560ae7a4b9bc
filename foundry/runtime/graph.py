"""An Agent manifest + its pinned DIS → a LangGraph tool-calling loop with approvals and limits.

    agent = AgentGraph(manifest, domain, provider=provider, checkpointer=saver)
    result = agent.start(thread_id, "Triage invoice INV-1001.")
    while result.status == "waiting_approval":
        result = agent.resume(thread_id, approved=True, by="ann@acme.test")

The graph is `model → tools → … → model` until the model answers without calling a tool. The
`tools` node runs one tool call per super-step, so each call is checkpointed on its own (a
resumed run never repeats a call already recorded), and it asks for approval with
`interrupt()` before anything happens, so the node may safely re-run when resumed. A call
needs approval when the manifest's `approvals.tools` lists its tool or a DIS rule with
`require_approval` matches it; a `deny` rule refuses it (the model is told why); a rejected
call is reported to the model the same way.

Limits end a run cleanly, checked before every step (a step is one model call or one tool
call): `max_steps` steps, `max_tokens` input + output tokens (also checked right after each
model call), and `timeout_seconds` of working time — the time spent in steps, summed over the
run and carried in the checkpoint, so waiting in a queue or for an approver does not count.
Model and tool calls are given what is left of it as their timeout. A `cancelled` hook, when
given, is asked before every step. Manifests without limits get the defaults below.

State stays small per checkpoint: messages and step records live in delta channels (each
checkpoint stores only what a step added); the system context is rebuilt, not stored.
Each step is also handed to `RunHooks.on_step` as it completes; its `index` is stable, so a
step reported again after a crash can be recognised.

Recovery (a server runs each run as a thread of a durable checkpointer): `inspect` tells where
a thread stands and `recover` continues it from its last checkpoint. A step completes before
LangGraph commits its checkpoint, so a worker lost in between has done a step the checkpoint
does not hold. `RunHooks.record` receives every completed step with what is needed to re-create
it, and `RunHooks.replay` hands that back when the recovered run reaches the same step: the
step is replayed (its model answer or tool result reused) instead of being done again, so a
model or tool call recorded as completed is never repeated. An `http` call in flight when the
worker died was never recorded and is made again, with the same `Idempotency-Key` header
(`<thread id>:<step index>`) so the remote side can recognise it.
"""

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import _messages_delta_reducer
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from langsmith import tracing_context as langsmith_tracing
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from foundry.db.text import UNSTORABLE
from foundry.runtime.context import system_prompt
from foundry.runtime.provider_http import text_clean
from foundry.runtime.providers import (
    CUT_REASONS,
    WITHHELD_REASONS,
    Provider,
    ProviderError,
    Usage,
    message_text,
)
from foundry.runtime.rules import OVERAGE_TOOL
from foundry.runtime.tools import Tool, Toolbox, ToolError, ToolOptions

DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_TOKENS = 200_000
DEFAULT_TIMEOUT_SECONDS = 600
SUMMARY_CHARS = 500
_tracer = trace.get_tracer("foundry.runtime")


@dataclass(frozen=True)
class Limits:
    max_steps: int = DEFAULT_MAX_STEPS
    max_tokens: int = DEFAULT_MAX_TOKENS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def of(cls, manifest: Mapping) -> "Limits":
        limits = manifest["spec"].get("limits") or {}
        return cls(
            limits.get("max_steps", DEFAULT_MAX_STEPS),
            limits.get("max_tokens", DEFAULT_MAX_TOKENS),
            limits.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS),
        )


def _extend(records: list, writes: list) -> list:
    # DeltaChannel reducer: appending is batching-invariant. Records must not carry a "type" or
    # "role" key: LangGraph would take such a dict for a message.
    out = list(records)
    for write in writes:
        out.extend(write if isinstance(write, list) else [write])
    return out


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer)]
    steps: Annotated[list[dict], DeltaChannel(_extend)]
    step_count: int
    input_tokens: int
    output_tokens: int
    elapsed_ms: float
    # The caps a human approved spending past (`quota` hook's "caps": each a budget at its amount in
    # its month); True in runs approved before approvals named their caps: every budget, for good.
    overage_approved: list[str] | bool
    # Set once, when the run ends: {"status", "output"} or {"status", "reason", "message"}.
    outcome: dict | None
    # The tool calls of the last model answer whose arguments no store keeps as the model wrote
    # them (`_portable`): call id → what; the tool node refuses them (tool_argument_invalid).
    unportable: dict[str, str]


@dataclass
class RunHooks:
    """How the place running an agent follows and steers it (every hook is optional).

    on_step(step)           each step as it completes (progress display)
    cancelled()             asked before every step: True ends the run as cancelled
    record(step, payload)   each step as it completes, before LangGraph commits it, with the
                            payload `replay` must hand back to re-create the step
    replay(index)           (step, payload) of step `index` if an earlier attempt recorded it, else None
    quota(approved)         asked before every model call, with the caps approved so far (the
                            state's `overage_approved`): None when it may be made, else
                            {"message", "approvable"}: the run stops with `quota_exceeded`, or,
                            when approvable, waits for a human to approve the overage past
                            "caps" (their keys; "reasons": a message for each), which it adds
    content()               asked once a model call answered, when prompts and completions would
                            go on its span: False leaves them off (the setting was turned off)
    """

    on_step: Callable[[dict], None] | None = None
    cancelled: Callable[[], bool] | None = None
    record: Callable[[dict, dict], None] | None = None
    replay: Callable[[int], tuple[dict, dict] | None] | None = None
    quota: Callable[[bool], dict | None] | None = None
    content: Callable[[], bool] | None = None


@dataclass
class RunResult:
    """Where a run stands after `start` or `resume`."""

    status: str  # waiting_approval | succeeded | failed | cancelled
    output: str | None = None
    reason: str | None = None  # stable code when it did not succeed: max_steps, max_tokens, timeout, …
    message: str | None = None
    approval: dict | None = None  # the pending request while waiting_approval
    steps: list[dict] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ThreadState:
    """Where a run (thread) stands according to its last checkpoint."""

    started: bool  # the thread has a checkpoint
    step_count: int = 0
    approval: dict | None = None  # the approval request it waits for
    result: RunResult | None = None  # set once the run has ended


class RunStateError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# A model step's warning when the endpoint reported no usage (docs/providers.md).
USAGE_ESTIMATED = "usage_estimated: the endpoint reported no token usage; counted with the offline tokenizer"


def _unfinished(message: AIMessage) -> dict | None:
    """The outcome of an answer the model did not finish, or None: it stopped at its output limit
    (`model_output_truncated`) or the endpoint withheld it (a content filter:
    `model_output_filtered`). Half an answer is not the agent's answer, and the tool calls in it
    are not run: a call cut at the limit may carry half its arguments."""
    metadata = message.response_metadata or {}
    stopped = metadata.get("finish_reason") or metadata.get("stop_reason")
    if stopped in CUT_REASONS:
        return _ended(
            "failed",
            "model_output_truncated",
            f"The model's answer was cut at {CUT_REASONS[stopped]} ({stopped});"
            " raise max_output_tokens or ask for less.",
        )
    if stopped in WITHHELD_REASONS:
        return _ended("failed", "model_output_filtered", f"The endpoint withheld the model's answer ({stopped}).")
    return None


def _answered(message: AIMessage) -> dict:
    """The outcome of a final answer: succeeded, unless the model did not finish it (`_unfinished`)."""
    return _unfinished(message) or {"status": "succeeded", "output": message_text(message)}


def _ended(status: str, reason: str, message: str) -> dict:
    return {"status": status, "reason": reason, "message": message}


_INT64 = range(-(2**63), 2**64)  # what msgpack (the checkpoints' format) holds: int64 and uint64


_MAX_NESTING = 32  # levels of tool-call arguments kept as structure (msgpack refuses deep ones)


def _portable(value, depth: int = 0):
    """Tool-call arguments in the form every store they reach takes (checkpoints: msgpack, whose
    integers end at 64 bits and nesting soon; steps: jsonb, which has no NaN nor Infinity, and
    PostgreSQL's text, no NUL nor lone surrogate): such numbers, and what nests deeper than
    _MAX_NESTING, which a model may write, become text; such characters, U+FFFD."""
    if isinstance(value, str):
        return UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple) and depth >= _MAX_NESTING:
        try:
            return json.dumps(value, default=str)
        except (ValueError, RecursionError):
            return "…"
    if isinstance(value, dict):
        return {_portable(key): _portable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(item, depth + 1) for item in value]
    return value


UNPORTABLE = (
    "An argument holds a value the platform cannot carry as written (an integer past 64 bits, NaN or "
    f"an infinity, nesting deeper than {_MAX_NESTING} levels, or a NUL character in text); the call "
    "was not made. Send such a number as a string, flatten the structure, or leave the character out."
)


def _replayed_message(payload: dict) -> AIMessage | None:
    """The model's answer a recorded step hands back: from its JSON text (its numbers exact), or,
    as steps recorded before that hold it, from its jsonb record, its arguments made storable."""
    if payload.get("message_json"):
        return messages_from_dict([json.loads(payload["message_json"])])[0]
    if not payload.get("message"):
        return None
    message = messages_from_dict([payload["message"]])[0]
    for call in getattr(message, "tool_calls", None) or []:
        call["args"] = _portable(call["args"])
    return message


def _summary(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def pending_tool_calls(messages: list) -> list[dict]:
    """The tool calls of the last assistant message that have no result yet, in order."""
    answered: set[str] = set()
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
        elif isinstance(message, AIMessage):
            return [c for c in message.tool_calls if c["id"] not in answered]
    return []


def _decision(value: Any) -> dict:
    """An approver's answer; anything but an explicit approval is a rejection (fail closed).
    `caps`: the budgets an overage approval covers, those its request listed (None: a request
    made before requests listed them)."""
    answer = value if isinstance(value, Mapping) else {}
    by, comment, caps = answer.get("by"), answer.get("comment"), answer.get("caps")
    return {
        "approved": answer.get("approved") is True,
        "by": by if isinstance(by, str) else None,
        "comment": comment if isinstance(comment, str) else None,
        "caps": [cap for cap in caps if isinstance(cap, str)] if isinstance(caps, list) else None,
    }


def _step_span(state, runtime: Runtime, node: str):
    """A span per graph step (foundry/telemetry.py); a pause for approval is not an error."""
    return _tracer.start_as_current_span(
        "agent.step",
        context=getattr(runtime.context, "trace_context", None),
        attributes={
            "gen_ai.agent.name": runtime.context.name,
            "agent.step.index": state.get("step_count", 0) + 1,
            "agent.step.node": node,
        },
        record_exception=False,
        set_status_on_exception=False,
    )


def _model_node(state, runtime: Runtime) -> dict:
    with _step_span(state, runtime, "model"):
        return runtime.context._model(state)


def _tools_node(state, runtime: Runtime) -> dict:
    with _step_span(state, runtime, "tools"):
        return runtime.context._tools(state)


def _next(state) -> str:
    if state.get("outcome"):
        return END
    return "tools" if pending_tool_calls(state["messages"]) else "model"


@functools.cache
def agent_graph_compiled(state_schema: type) -> CompiledStateGraph:
    """The graph every agent runs, compiled once per process: its nodes find the agent, the
    provider and the hooks in the run's AgentGraph, which each run passes as LangGraph's
    runtime context. (State parameters are unannotated: the nodes read the graph's state.)"""
    builder = StateGraph(state_schema)
    builder.add_node("model", _model_node)
    builder.add_node("tools", _tools_node)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", _next, ["tools", END])
    builder.add_conditional_edges("tools", _next, ["tools", "model", END])
    return builder.compile()


class AgentGraph:
    """One agent's graph and the calls that start and resume its runs (threads)."""

    state_schema: type = AgentState

    def __init__(
        self,
        manifest: Mapping,
        domain: Mapping,
        *,
        provider: Provider,
        checkpointer=None,
        tools: ToolOptions | None = None,
        hooks: RunHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
        durability: str = "sync",
        trace_content: bool = False,
        interrupted_ms: float = 0.0,
    ):
        self.name = manifest["metadata"]["name"]
        self.limits = Limits.of(manifest)
        self.toolbox = Toolbox(manifest, domain, tools)
        self.system = SystemMessage(content=system_prompt(manifest, domain))
        self.provider = provider
        self.hooks = hooks or RunHooks()
        self.clock = clock
        # Running time spent outside the recorded steps: steps cut off before they were recorded
        # (a worker's soft time limit), counted against `timeout_seconds` all the same.
        self.interrupted_ms = interrupted_ms
        self._step_started: float | None = None  # when the step under way began
        self.durability = durability
        # Prompts and completions go on model-call spans only when the tenant allows it.
        self.trace_content = trace_content
        self.graph = agent_graph_compiled(self.state_schema).copy(
            update={"checkpointer": checkpointer or InMemorySaver(), "name": self.name}
        )

    # --- running --------------------------------------------------------------------------
    def start(self, thread_id: str, text: str) -> RunResult:
        return self._invoke({"messages": [HumanMessage(content=text)]}, thread_id)

    def resume(self, thread_id: str, *, approved: bool, by: str | None = None, comment: str | None = None) -> RunResult:
        """Answer the approval the run waits for (RunStateError `run_not_waiting` if none)."""
        interrupts = self.graph.get_state(self._config(thread_id)).interrupts
        if not interrupts:
            raise RunStateError("run_not_waiting", "The run is not waiting for an approval.")
        # The answer is to the question asked: an overage approval covers the budgets it listed.
        caps = interrupts[0].value.get("caps") if isinstance(interrupts[0].value, Mapping) else None
        return self._invoke(
            Command(resume={"approved": approved, "by": by, "comment": comment, "caps": caps}), thread_id
        )

    def recover(self, thread_id: str) -> RunResult:
        """Continue a run from its last checkpoint (its worker was lost), replaying recorded steps."""
        return self._invoke(None, thread_id)

    def inspect(self, thread_id: str) -> ThreadState:
        snapshot = self.graph.get_state(self._config(thread_id))
        values = snapshot.values or {}
        if not values and not snapshot.next:
            return ThreadState(started=False)
        step_count = values.get("step_count", 0)
        if snapshot.interrupts:
            return ThreadState(True, step_count, approval=snapshot.interrupts[0].value)
        outcome = values.get("outcome")
        if outcome and not snapshot.next:
            return ThreadState(True, step_count, result=self._result(values, outcome))
        return ThreadState(True, step_count)

    def _config(self, thread_id: str) -> dict:
        # Every super-step is one step or the end, so this bound is never what stops a run.
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": self.limits.max_steps + 10}

    def _invoke(self, payload, thread_id: str) -> RunResult:
        # LangGraph may run a node in another thread or context: steps' spans name this one,
        # the caller's (the Celery task's), as their parent explicitly.
        self.trace_context = otel_context.get_current()
        # Never LangSmith's tracer, which langchain-core attaches to every graph run when the
        # process has LANGSMITH_TRACING (or LANGCHAIN_TRACING_V2) set: it would post every
        # workspace's state — prompts, answers, tool results — to LangSmith, whatever trace_content says.
        with langsmith_tracing(enabled=False):
            out = self.graph.invoke(
                payload, self._config(thread_id), context=self, version="v2", durability=self.durability
            )
        flush = getattr(self.graph.checkpointer, "flush", None)
        if flush is not None:  # apps/runs/checkpoints.py: writes held for a checkpoint that never came
            flush()
        values = out.value
        if out.interrupts:
            result = self._result(values, None)
            result.approval = out.interrupts[0].value
            return result
        outcome = values.get("outcome")
        if not outcome:
            raise RunStateError("run_incomplete", "The graph stopped without an outcome.")
        return self._result(values, outcome)

    @staticmethod
    def _result(values: Mapping, outcome: Mapping | None) -> RunResult:
        result = RunResult(
            status="waiting_approval",
            steps=list(values.get("steps") or ()),
            input_tokens=values.get("input_tokens", 0),
            output_tokens=values.get("output_tokens", 0),
        )
        if outcome:
            result.status = outcome["status"]
            result.output = outcome.get("output")
            result.reason = outcome.get("reason")
            result.message = outcome.get("message")
        return result

    # --- nodes ----------------------------------------------------------------------------
    def _remaining(self, state: AgentState) -> float:
        spent = state.get("elapsed_ms", 0.0) + self.interrupted_ms
        return max(0.0, self.limits.timeout_seconds - spent / 1000)

    def step_under_way_ms(self) -> float:
        """How long the step under way has been running (0 between steps): what a cut-off attempt
        spent that no step record holds."""
        started = self._step_started
        return 0.0 if started is None else max(0.0, (self.clock() - started) * 1000)

    def _stop(self, state: AgentState) -> dict | None:
        """Why the run must end before its next step, or None."""
        if self.hooks.cancelled is not None and self.hooks.cancelled():
            return _ended("cancelled", "cancelled", "The run was cancelled.")
        limits = self.limits
        if state.get("step_count", 0) >= limits.max_steps:
            return _ended("failed", "max_steps", f"The run reached its limit of {limits.max_steps} steps.")
        used = state.get("input_tokens", 0) + state.get("output_tokens", 0)
        if used >= limits.max_tokens:
            return _ended("failed", "max_tokens", f"The run used {used} tokens; its limit is {limits.max_tokens}.")
        if self._remaining(state) <= 0:
            return _ended("failed", "timeout", f"The run reached its time limit of {limits.timeout_seconds:g} s.")
        return None

    def _replayed(self, index: int, node: str, tool_call_id: str | None = None) -> tuple[dict, dict] | None:
        """The recorded (step, payload) of step `index` when this node already did it, else None."""
        if self.hooks.replay is None:
            return None
        recorded = self.hooks.replay(index)
        if recorded is None:
            return None
        step, payload = recorded
        if step.get("node") != node or step.get("tool_call_id") != tool_call_id:
            return None  # not the step this node is about to take: do it
        return dict(step), payload

    def _record(self, state: AgentState, step: dict, update: dict, payload: dict, started: float | None) -> dict:
        """Finish a step; `started` is None for a replayed step, already recorded and timed."""
        self._step_started = None
        if started is not None:
            step["duration_ms"] = round((self.clock() - started) * 1000, 3)
        update.update(
            steps=[step], step_count=step["index"], elapsed_ms=state.get("elapsed_ms", 0.0) + step["duration_ms"]
        )
        if started is not None:
            if self.hooks.record is not None:
                self.hooks.record(step, payload)
            if self.hooks.on_step is not None:
                self.hooks.on_step(step)
        return update

    def _model(self, state: AgentState) -> dict:
        index = state.get("step_count", 0) + 1
        replayed = self._replayed(index, "model")
        if replayed is not None:
            step, payload = replayed
            message = _replayed_message(payload)
            # An overage a human approved at this step stays approved: the step's record says so.
            return self._model_done(state, step, message, payload, None, step.get("overage_approved"))
        stop = self._stop(state)
        if stop:
            return {"outcome": stop}
        approved = state.get("overage_approved") or []
        spent = self.hooks.quota(approved) if self.hooks.quota is not None else None
        # Resumed after an approval, this node runs again from its start and the budgets are
        # checked afresh: the approval covers the budgets it listed (its request's caps), and one
        # reached or changed while the run waited asks again (a further interrupt: the engine
        # puts that question to the approvers in the step's approval).
        while spent is not None:
            if not spent["approvable"]:
                return {"outcome": _ended("failed", "quota_exceeded", spent["message"])}
            reasons = spent.get("reasons") or [spent["message"]]
            decision = self._overage_approval(index, reasons, spent.get("caps", []))
            if not decision["approved"]:
                comment = f": {decision['comment']}" if decision["comment"] else "."
                message = f"{' '.join(reasons)} A human approver refused the overage{comment}"
                return {"outcome": _ended("failed", "quota_exceeded", message)}
            covered = spent.get("caps", []) if decision["caps"] is None else decision["caps"]  # None: asked before caps
            if approved is True or not covered:  # every budget (approved so before caps), or none named
                break
            approved = [*approved, *(cap for cap in covered if cap not in approved)]
            spent = self.hooks.quota(approved)
        step = {"index": index, "node": "model", "provider": self.provider.name, "model": self.provider.model}
        started = self._step_started = self.clock()
        with _tracer.start_as_current_span(
            f"chat {self.provider.model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": self.provider.name,
                "gen_ai.system": self.provider.name,
                "gen_ai.request.model": self.provider.model,
            },
        ) as span:
            try:
                reply = self.provider.complete(
                    [self.system, *state["messages"]], self.toolbox.specs, timeout=self._remaining(state)
                )
            except ProviderError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                span.set_attribute("error.type", exc.code)
                spent = exc.usage or Usage(0, 0)  # an answer refused was still billed: its tokens count
                step.update(
                    status="error",
                    error=exc.code,
                    summary=_summary(exc.message),
                    input_tokens=spent.input_tokens,
                    output_tokens=spent.output_tokens,
                    cached_tokens=spent.cached_tokens,
                    cache_write_tokens=spent.cache_write_tokens,
                )
                return self._model_done(state, step, None, {"error": exc.message}, started, approved)
            span.set_attribute("gen_ai.usage.input_tokens", reply.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", reply.usage.output_tokens)
            if self.trace_content and (self.hooks.content is None or self.hooks.content()):
                sent = [message_to_dict(m) for m in [self.system, *state["messages"]]]
                span.set_attribute("gen_ai.input.messages", json.dumps(sent, default=str))
                span.set_attribute("gen_ai.output.messages", json.dumps([message_to_dict(reply.message)], default=str))
        message, usage = reply.message, reply.usage
        calls = message.tool_calls
        unportable = {}
        for call in calls:
            args = _portable(call["args"])
            if args != call["args"]:  # changed to be stored (NaN, unequal to itself, too): not what the model wrote
                unportable[call["id"]] = UNPORTABLE
            call["args"] = args
        text = message_text(message)
        step.update(
            status="ok",
            summary=_summary(text) if text or not calls else "calls " + ", ".join(c["name"] for c in calls),
            tool_calls=[c["name"] for c in calls],
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        if (message.response_metadata or {}).get("usage_estimated"):
            step["warnings"] = [USAGE_ESTIMATED]
        if unportable:
            step["unportable"] = unportable  # recorded with the step, for a replay of it
        # As JSON text: the replay record is jsonb, which would give an integral float such as
        # 1e20 back as an integer (past msgpack's 64 bits) and -0.0 as 0.
        payload = {"message_json": json.dumps(message_to_dict(message), ensure_ascii=False, default=str)}
        return self._model_done(state, step, message, payload, started, approved)

    def _model_done(
        self,
        state: AgentState,
        step: dict,
        message: AIMessage | None,
        payload: dict,
        started: float | None,
        overage_approved: list[str] | bool | None = None,
    ) -> dict:
        if message is None:
            took = step["duration_ms"] if started is None else (self.clock() - started) * 1000
            if (
                step.get("error") == "provider_timeout"
                and self._remaining({**state, "elapsed_ms": (state.get("elapsed_ms", 0.0) + took)}) <= 0
            ):
                # The call was given what was left of the run's time, and used it up: the run's limit.
                limit = self.limits.timeout_seconds
                outcome = _ended("failed", "timeout", f"The run reached its time limit of {limit:g} s in a model call.")
            else:
                outcome = _ended("failed", "model_failed", f"The model call failed: {payload.get('error', '')}")
            return self._record(state, step, {"outcome": outcome}, payload, started)
        usage = Usage(step["input_tokens"], step["output_tokens"], step.get("cached_tokens", 0))
        input_tokens = state.get("input_tokens", 0) + usage.input_tokens
        output_tokens = state.get("output_tokens", 0) + usage.output_tokens
        update: dict = {"messages": [message], "input_tokens": input_tokens, "output_tokens": output_tokens}
        if step.get("unportable") or state.get("unportable"):
            update["unportable"] = step.get("unportable") or {}
        if overage_approved and overage_approved != state.get("overage_approved"):
            update["overage_approved"] = overage_approved
            step["overage_approved"] = overage_approved  # recorded with the step, for a replay of it
        if input_tokens + output_tokens > self.limits.max_tokens:
            used = input_tokens + output_tokens
            update["outcome"] = _ended(
                "failed", "max_tokens", f"The run used {used} tokens; its limit is {self.limits.max_tokens}."
            )
        elif not message.tool_calls:
            update["outcome"] = _answered(message)
        elif (unfinished := _unfinished(message)) is not None:
            update["outcome"] = unfinished  # its tool calls are not run
        return self._record(state, step, update, payload, started)

    def _tools(self, state: AgentState) -> dict:
        call = pending_tool_calls(state["messages"])[0]
        index = state.get("step_count", 0) + 1
        replayed = self._replayed(index, "tool", call["id"])
        if replayed is not None:
            step, payload = replayed
            status, content, started = step["status"], payload["content"], None
        else:
            stop = self._stop(state)
            if stop:
                return {"outcome": stop}
            step = {
                "index": index,
                "node": "tool",
                "tool": call["name"],
                "tool_call_id": call["id"],
                "arguments": call["args"],
                "warnings": [],
                "approval": None,
                "input_tokens": 0,
                "output_tokens": 0,
            }
            # Timed from here, the review against the domain's rules included (it is running time):
            # a wait for an approval is not, as the node runs again from its start once resumed.
            started = self._step_started = self.clock()
            if call["id"] in (state.get("unportable") or {}):
                tool, status, content = None, "error", f"Error (tool_argument_invalid): {UNPORTABLE}"
                step["error"] = "tool_argument_invalid"
            else:
                tool, status, content = self._admit(step)
            if tool is not None:
                step["ran"] = True  # the call went ahead (refused before running: no `ran`)
                key = f"{get_config()['configurable']['thread_id']}:{index}"
                with _tracer.start_as_current_span(
                    f"execute_tool {call['name']}",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call["name"]},
                ) as span:
                    try:
                        status = "ok"
                        # The time the run has left, less what this step's review took already.
                        left = max(0.0, self._remaining(state) - (self.clock() - started))
                        content = self.toolbox.run(tool, call["args"], timeout=left, key=key)
                    except ToolError as exc:
                        status, content = "error", f"Error ({exc.code}): {exc.message}"
                        step["error"] = exc.code
                        span.set_status(Status(StatusCode.ERROR, exc.code))
                        span.set_attribute("error.type", exc.code)
            # A service's answer may carry lone surrogates (JSON escapes, odd charsets): no model
            # request, and no database row, can take them.
            content = text_clean(content)
            step.update(status=status, summary=_summary(content))
            payload = {"content": content}
        message = ToolMessage(
            content=content, tool_call_id=call["id"], name=call["name"], status="success" if status == "ok" else "error"
        )
        return self._record(state, step, {"messages": [message]}, payload, started)

    def _admit(self, step: dict) -> tuple[Tool | None, str, str]:
        """(the tool, "", "") when the call may run, else (None, status, what the model is told)."""
        try:
            tool = self.toolbox.get(step["tool"])
            verdict, reasons = self.toolbox.review(tool, step["arguments"])
        except ToolError as exc:
            step["error"] = exc.code
            return None, "error", f"Error ({exc.code}): {exc.message}"
        step["warnings"] = [rule.explain() for rule in verdict.warnings]
        if verdict.denied:
            return (
                None,
                "denied",
                "Refused by the domain's business rules: " + "; ".join(rule.explain() for rule in verdict.denied),
            )
        if reasons:
            decision = self._approval(step, reasons)
            if not decision["approved"]:
                comment = f": {decision['comment']}" if decision["comment"] else "."
                return None, "rejected", "A human approver rejected this call" + comment
        return tool, "", ""

    def _overage_approval(self, index: int, reasons: list[str], caps: list[str]) -> dict:
        """Wait for a human to approve spending past the budgets reached before model call `index`
        (`caps`: their keys, which the approval covers)."""
        request = {
            "kind": "overage",
            "step": index,
            "tool": OVERAGE_TOOL,
            "tool_call_id": "",
            "arguments": {},
            "reasons": reasons,
            "caps": caps,
        }
        return _decision(interrupt(request))

    def _approval(self, step: dict, reasons: list[str]) -> dict:
        request = {
            "kind": "approval",
            "step": step["index"],
            "tool": step["tool"],
            "tool_call_id": step["tool_call_id"],
            "arguments": step["arguments"],
            "reasons": reasons,
        }
        decision = _decision(interrupt(request))
        decision.pop("caps")  # an overage's only
        step["approval"] = {"reasons": reasons, **decision}
        return decision
