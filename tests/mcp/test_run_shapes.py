"""The shapes MCP tools return runs in (foundry/mcp/shapes.py)."""


def test_mcp_list_runs_structured_content_keeps_project_provider_and_model():
    """A listed run is the run without input, output and steps (docs/mcp.md, `list_runs`): its
    DIS pin, project, provider and model are kept, as the filters on them suggest."""
    from foundry.mcp.shapes import RunPage

    run = {
        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "agent": "invoice-triage",
        "version": 1,
        "domain": {"name": "finance", "version": 1},
        "project": "default",
        "provider": "scripted",
        "model": "scripted-1",
        "status": "succeeded",
        "reason": "",
        "message": "",
        "created_by": "user:1",
        "parent": None,
        "step_count": 3,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 0,
        "created_at": "2026-12-01T00:00:00Z",
        "started_at": "2026-12-01T00:00:01Z",
        "finished_at": "2026-12-01T00:00:02Z",
    }
    dumped = RunPage(runs=[run], next_page_token="").model_dump(mode="json")["runs"][0]
    assert {"domain", "project", "provider", "model"} <= set(dumped), sorted(dumped)
