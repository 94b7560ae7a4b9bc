"""Answers that say what a request created: 201 with the new resource's address in `Location`
(RFC 9110 §15.3.2: without it, a client takes the created resource to be the URL it posted to),
and the header documented in the schema."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

API_ROOT = "/api/v1/"

LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    response=[201],
    description="The created resource's path, e.g. `/api/v1/runs/{run_id}`.",
)


def created(body, path: str) -> Response:
    """201 Created with `body`, naming the new resource (`path`, below /api/v1/) in `Location`."""
    return Response(body, status=201, headers={"Location": API_ROOT + path})
