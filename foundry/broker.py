"""The Redis transports Celery reads the broker through: kombu's own, except that an item it cannot
read as a message envelope — not JSON, JSON that is no object, a body that is no base64 — is
logged and dropped instead of stopping the worker, and the connections a process publishes on
are `InterruptSafe` (foundry/redis_clients.py). kombu reads and builds the envelope before
any of Celery's code (and the signature check, foundry/celery.py) sees it, and let such an error
end the worker's consumer: one write into the broker's Redis (a task queue's list, or the control
channel every worker listens to) stopped one worker, or all of them
(docs/operations/deployment.md, "Celery message signing").

A task that sends a task (a run's sub-agent, a sweep's batch) publishes on the channel's pool
in the task's own process, where a soft time limit can cut a command off between its send and its
read: its reply must not be read by the process's next command on that connection. The consumer's
connections (BRPOP, the broadcast channel's subscription) are kombu's own: they live in the
worker's main process, which no time limit interrupts, and a subscription's replies are not
counted one per command."""

import binascii
import logging

from kombu.transport import redis as kombu_redis

from foundry.redis_clients import interrupt_safe

logger = logging.getLogger("foundry.celery")

# What reading a bad envelope raises (json's ValueError, base64's binascii.Error, a list or a
# string where kombu indexes an object): never a connection error, which kombu handles itself.
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, binascii.Error)


class _Guarded:
    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous=asynchronous)
        if not asynchronous:
            params["connection_class"] = interrupt_safe(params["connection_class"])
        return params

    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except _UNREADABLE as exc:
            logger.warning("dropped an item of the broker's queue that is no message (%s)", type(exc).__name__)
            return True  # taken off the queue: the next one is read

    def _deliver_fanout_message(self, message, exchange):
        try:
            return super()._deliver_fanout_message(message, exchange)
        except _UNREADABLE as exc:
            logger.warning("dropped a broadcast on %r that is no message (%s)", exchange, type(exc).__name__)
            return True


class GuardedChannel(_Guarded, kombu_redis.Channel):
    pass


class GuardedSentinelChannel(_Guarded, kombu_redis.SentinelChannel):
    pass


class _Uncompressed:
    """No compressed message is delivered: kombu decompresses one (its `compression` header is
    not signed) when it builds the message, before the signature is checked, and with no bound —
    a few bytes of gzip or lzma written into Redis could take a worker's memory. The platform
    compresses nothing it sends."""

    def _deliver(self, message, queue):
        headers = message.get("headers") if isinstance(message, dict) else None
        if isinstance(headers, dict) and headers.get("compression"):
            logger.warning("dropped a compressed message from the broker (the platform sends none)")
            return None
        return super()._deliver(message, queue)


class GuardedTransport(_Uncompressed, kombu_redis.Transport):
    Channel = GuardedChannel


class GuardedSentinelTransport(_Uncompressed, kombu_redis.SentinelTransport):
    Channel = GuardedSentinelChannel
