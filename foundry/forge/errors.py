"""Why a forge command stopped: a stable code, a one-line message and the exit code it means."""

USAGE = 2  # bad arguments, unreadable file, server unreachable, refused credentials, server fault
INVALID = 1  # problems in a document, failing tests, a publish the server refused


class ForgeError(Exception):
    """Stops the command; printed as one line (or `{"error": ...}` with --json)."""

    exit_code = USAGE

    def __init__(self, code: str, message: str, *, details: list | dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.document: dict | None = None  # printed under --json instead of `as_dict()`, when set

    def as_dict(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ApiError(ForgeError):
    """The server answered a 4xx other than 401/403 (those are ForgeError: credentials)."""

    def __init__(self, status: int, code: str, message: str, *, details: list | dict | None = None):
        super().__init__(code, message, details=details)
        self.status = status
