"""Admission: the bounded queue in front of the engine, and the gauges that show it."""

from __future__ import annotations

import time

from app.core.config import Settings
from app.engine.base import Engine
from app.serving.errors import overloaded
from app.serving.metrics import ServiceMetrics


class Admission:
    """Counts the requests waiting for their first engine step and those producing tokens."""

    def __init__(self, engine: Engine, settings: Settings, metrics: ServiceMetrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.queued = 0
        self.running = 0
        self.draining = False

    def admit(self) -> Ticket:
        """A place in the queue, or 503 with Retry-After when it is full or the service is draining."""
        retry = self.settings.retry_after_s
        if self.draining:
            raise overloaded("The service is shutting down", retry)
        if not self.engine.healthy():
            raise overloaded("The inference engine is not running", retry)
        if self.queued >= self.settings.max_queued_requests:
            self.metrics.rejected.inc()
            raise overloaded("The request queue is full; retry later", retry)
        self.queued += 1
        self.update_gauges()
        return Ticket(self)

    def update_gauges(self) -> None:
        """Refresh the queue and running gauges (service and engine views)."""
        self.metrics.queue_depth.set(self.queued)
        self.metrics.running.set(self.running)
        stats = self.engine.stats()
        self.metrics.engine_running.set(stats.running)
        self.metrics.engine_waiting.set(stats.waiting)


class Ticket:
    """One admitted request's place in the queue; released exactly once."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.admitted_at = time.perf_counter()
        self.started = False
        self.released = False

    def mark_started(self) -> None:
        """The first engine step arrived: the request moves from queued to running."""
        if not self.started and not self.released:
            self.started = True
            self._admission.queued -= 1
            self._admission.running += 1
            self._admission.update_gauges()

    def release(self) -> None:
        """Leave the queue or the running set."""
        if self.released:
            return
        self.released = True
        if self.started:
            self._admission.running -= 1
        else:
            self._admission.queued -= 1
        self._admission.update_gauges()
