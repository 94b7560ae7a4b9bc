"""Appends from another process, through the platform's SQL function (psycopg only, no Django:
spawned processes import this module alone)."""

import psycopg


def append_many(arguments: tuple[str, int, int]) -> int:
    url, chain, count = arguments
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(count):
            conn.execute(
                "SELECT seq FROM public.audit_append(%s, 'service', 'service:load', %s, '', '', 'success', '', '', '',"
                " '{}', NULL, NULL)",
                [chain, f"load.{n}"],
            )
    return count
