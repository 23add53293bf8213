"""Stop strings, matched across token boundaries, never leaked into the output."""

from __future__ import annotations


class StopMatcher:
    """Feeds text through; holds back any tail that could still become a stop string."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self.stops), default=0)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; after a match, ``stopped`` is True and the rest is dropped."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        combined = self._pending + text
        hits = [i for i in (combined.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            self._pending = ""
            return combined[: min(hits)]
        hold = 0
        for k in range(min(len(combined), self._longest - 1), 0, -1):
            tail = combined[-k:]
            if any(s.startswith(tail) for s in self.stops):
                hold = k
                break
        self._pending = combined[len(combined) - hold :] if hold else ""
        return combined[: len(combined) - hold]

    @property
    def held(self) -> int:
        """How many characters of the text fed so far are held back."""
        return len(self._pending)

    def flush(self) -> str:
        """At the end of generation, the held-back tail was not a stop string after all."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out
