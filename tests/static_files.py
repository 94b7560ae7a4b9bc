"""WhiteNoise for the test suite: the same middleware, its scans of the static files made once per
process. A deployment builds the middleware once per process; the test client builds it for
every client (thousands in a run), and each scan of the static files (and their compressed
variants) took ~30 ms of CPU — a sixth of a module of console requests'."""

from whitenoise.middleware import WhiteNoiseMiddleware


class ScannedOnceWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    # (what was scanned, what a file's headers are made with) → the files found
    _scans: dict = {}

    def _scanned(self, what: tuple, scan) -> None:
        immutable = self.immutable_file_test
        key = (
            *what,
            self.static_prefix,
            self.max_age,
            self.allow_all_origins,
            self.charset,
            self.add_headers_function,
            getattr(immutable, "__func__", immutable),
            tuple(sorted(self.media_types.types_map.items())),
        )
        found = self._scans.get(key)
        if found is None:
            before = dict(self.files)
            scan()
            found = self._scans[key] = {url: file for url, file in self.files.items() if before.get(url) is not file}
        self.files.update(found)

    def update_files_dictionary(self, root, prefix):
        self._scanned(
            ("root", root, prefix),
            lambda: super(ScannedOnceWhiteNoiseMiddleware, self).update_files_dictionary(root, prefix),
        )

    def add_files_from_finders(self):
        self._scanned(("finders",), super().add_files_from_finders)
