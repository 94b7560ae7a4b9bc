"""Responses are kept by no browser or proxy unless a view says otherwise.

Console pages and API answers carry a workspace's data, and some a secret shown once (a new
API token, an invitation link that sets the owner's password): the back button, a shared cache
or the browser's history must not show them again. `NoStoreMiddleware` marks every response
that has no Cache-Control of its own (static files have theirs, from WhiteNoise) as
`no-store, private`.
"""

from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
