"""The API's content negotiation (REST_FRAMEWORK's DEFAULT_CONTENT_NEGOTIATION_CLASS). A module
of its own: DRF imports it while its views module loads."""

from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class Negotiation(DefaultContentNegotiation):
    """DRF's, except that a `?format=` no renderer of the view has is a 406 `not_acceptable`, as
    an `Accept` it cannot meet is: DRF answered 404 `not_found`, telling the client that a list
    it asked for in another format does not exist."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            raise NotAcceptable("This resource is not available in the format asked for.") from None
