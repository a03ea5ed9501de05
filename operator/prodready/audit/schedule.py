"""When each namespace is audited next: dirty marks, debounced, with no timer per object.

A watch event marks its namespace dirty. The namespace is audited once the burst has
settled (`settle`, so `kubectl apply -f dir/` is one pass, not one per object) and never
more often than once per `min_interval`, however many events arrive: a namespace where a
CronJob spawns Jobs every second costs one evaluation per interval, not one per event.

A large namespace under constant change is spaced further apart: after a pass that took
`d` seconds, the next one starts no sooner than `busy_factor * d` after it, so the audit of
a busy namespace never takes more than a tenth of the operator's time. Without it, a large
namespace being created is audited almost back to back, taking the CPU the apiserver needs
to create it (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SETTLE_SECONDS = 0.5
MIN_INTERVAL_SECONDS = 2.0
BUSY_FACTOR = 10.0


@dataclass
class DirtyNamespaces:
    """Namespaces waiting for a pass, each with the time it becomes due."""

    settle: float = SETTLE_SECONDS
    min_interval: float = MIN_INTERVAL_SECONDS
    busy_factor: float = BUSY_FACTOR
    _due: dict[str, float] = field(default_factory=dict)
    _last_run: dict[str, float] = field(default_factory=dict)
    _spacing: dict[str, float] = field(default_factory=dict)
    # Passes owed to what the store does not watch (a referenced Secret), apart from `_due`
    # so that a change marked meanwhile is not held back to their time.
    _rechecks: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, namespace: object) -> bool:
        return namespace in self._due

    def mark(self, namespace: str, now: float) -> None:
        """Something in `namespace` changed at `now` (a second mark before the pass is free)."""
        if namespace in self._due:
            return
        last = self._last_run.get(namespace)
        due = now + self.settle
        if last is not None:
            due = max(due, last + self._spacing.get(namespace, self.min_interval))
        self._due[namespace] = due

    def took(self, namespace: str, seconds: float) -> None:
        """A pass of `namespace` took `seconds`: space the next one accordingly."""
        self._spacing[namespace] = max(self.min_interval, self.busy_factor * seconds)

    def defer(self, namespace: str, until: float) -> None:
        """Audit `namespace` again no earlier than `until` (a failed pass backing off)."""
        self._due[namespace] = max(self._due.get(namespace, until), until)

    def recheck(self, namespace: str, at: float) -> None:
        """Audit `namespace` again by `at`, whether or not anything in it changes: what a
        pass read from outside the store (a Secret looked up by name) may change unseen."""
        self._rechecks[namespace] = min(self._rechecks.get(namespace, at), at)

    def pop_due(self, now: float) -> list[str]:
        """The namespaces due at `now`, removed from the set and recorded as run at `now`."""
        due = sorted(
            {namespace for namespace, at in self._due.items() if at <= now}
            | {namespace for namespace, at in self._rechecks.items() if at <= now}
        )
        for namespace in due:
            self._due.pop(namespace, None)
            self._rechecks.pop(namespace, None)
            self._last_run[namespace] = now
        return due

    def ran(self, namespace: str, now: float) -> None:
        """A pass of `namespace` started at `now` outside `pop_due` (a full audit)."""
        self._due.pop(namespace, None)
        self._rechecks.pop(namespace, None)
        self._last_run[namespace] = now

    def next_due(self) -> float | None:
        """When the earliest waiting namespace becomes due, or None when none waits."""
        return min((*self._due.values(), *self._rechecks.values()), default=None)

    def forget(self, namespace: str) -> None:
        """Drop what is remembered about a namespace that is gone."""
        self._due.pop(namespace, None)
        self._rechecks.pop(namespace, None)
        self._last_run.pop(namespace, None)
        self._spacing.pop(namespace, None)
