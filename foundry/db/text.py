"""Text PostgreSQL cannot store: NUL characters and lone UTF-16 surrogates (valid in Python
strings and as JSON escapes, refused by every text and jsonb column)."""

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
