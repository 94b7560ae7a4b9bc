"""The console's polls (htmx `hx-trigger="every 1s"`: a live run's page, the data export rows)
stop when they are refused.

htmx stops polling only when the polling element leaves the page (or on status 286); the
console shows any 4xx answer in its alert and leaves the element be, so a poll refused — the
workspace suspended, its member demoted, the thing gone — was sent again every second for as
long as the tab stayed open, each refusal recorded (`access.denied`). Polling elements send
`X-Foundry-Poll: 1` (`hx-headers`); a refused one is told to reload the page (`HX-Refresh`), which
then shows the refusal as a page and polls no more. The sign-in redirect (`HX-Redirect`) stays as
it is. Outside host routing, so a suspended workspace's answer gets it too."""

POLL_HEADER = "X-Foundry-Poll"


class PollRefusalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        refused = 400 <= response.status_code < 500 and response.status_code != 429  # a 429 passes
        polling = request.headers.get(POLL_HEADER) == "1" and request.headers.get("HX-Request") == "true"
        if refused and polling and not response.has_header("HX-Redirect"):
            response["HX-Refresh"] = "true"
        return response
