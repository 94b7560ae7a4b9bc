"""Domain (DIS) and Agent documents: safe loading, validation, canonical form and diff.

Pure Python with no database: the server and the `forge` CLI share it.

    result = validate(text, "agents/triage.yaml", domains=resolver)
    for problem in result.problems:
        print(problem)   # agents/triage.yaml:12:7: tool_duplicate_name: Two tools are named 'lookup'.
"""

from foundry.manifests.diff import Change, structural_diff, text_diff
from foundry.manifests.problems import DocumentError, Problem
from foundry.manifests.validation import (
    API_VERSION,
    KINDS,
    PROVIDERS,
    DomainResolver,
    Resolution,
    Validated,
    canonical,
    digest,
    schema,
    validate,
)

__all__ = [
    "API_VERSION",
    "KINDS",
    "PROVIDERS",
    "Change",
    "DocumentError",
    "DomainResolver",
    "Problem",
    "Resolution",
    "Validated",
    "canonical",
    "digest",
    "schema",
    "structural_diff",
    "text_diff",
    "validate",
]
