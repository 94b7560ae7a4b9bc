from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.billing.services import price_set

ACTOR = "cli:set_price"


class Command(BaseCommand):
    help = (
        "Set the price of a provider's model in USD per million tokens, from now or a later moment. "
        "Prices are versioned: usage already recorded keeps the cost it was given."
    )

    def add_arguments(self, parser):
        parser.add_argument("provider")
        parser.add_argument("model")
        parser.add_argument("--input", required=True, metavar="USD", help="per million input tokens")
        parser.add_argument("--output", required=True, metavar="USD", help="per million output tokens")
        parser.add_argument("--cached", default=None, metavar="USD", help="per million cached input tokens")
        parser.add_argument(
            "--cache-write",
            dest="cache_write",
            default=None,
            metavar="USD",
            help="per million input tokens written to the prompt cache (default: the input price)",
        )
        parser.add_argument("--from", dest="effective_from", default=None, help="ISO 8601 moment (default: now)")

    def handle(self, *args, provider, model, effective_from, **options):
        when = None
        if effective_from:
            try:
                when = datetime.fromisoformat(effective_from)
            except ValueError:
                raise CommandError(f"--from: {effective_from!r} is not an ISO 8601 moment.") from None
            if timezone.is_naive(when):
                when = when.replace(tzinfo=UTC)
        try:
            price = price_set(
                actor=ACTOR,
                provider=provider,
                model=model,
                input_per_mtok=options["input"],
                output_per_mtok=options["output"],
                cached_per_mtok=options["cached"] if options["cached"] is not None else options["input"],
                cache_write_per_mtok=options["cache_write"],
                effective_from=when,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(exc.message_dict[field])}" for field in exc.message_dict)
            raise CommandError(problems) from None
        cache_write = "input" if price.cache_write_per_mtok is None else price.cache_write_per_mtok
        self.stdout.write(
            f"{price.provider}/{price.model} from {price.effective_from.isoformat()}: input {price.input_per_mtok}, "
            f"output {price.output_per_mtok}, cached {price.cached_per_mtok}, cache write {cache_write} "
            "USD per million tokens."
        )
