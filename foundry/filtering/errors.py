class FilterError(ValueError):
    """A filter, order_by or page token the server refuses. `position` is a 0-based offset
    into the text the client sent (None when the whole value is at fault)."""

    def __init__(self, code: str, message: str, position: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position

    def as_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.position is not None:
            out["position"] = self.position
        return out
