"""A task for the message signing tests, loaded only by their worker (`--include`): it leaves a
file behind, so a test can tell whether a message ran."""

from pathlib import Path

from celery import shared_task


@shared_task(name="tests.probe")
def probe(path: str) -> None:
    Path(path).write_text("ran")
