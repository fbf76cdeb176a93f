"""When a full import may remove what it did not see.

A target that went empty, or lost most of its rows, more often means a broken file,
a wrong path or a truncated export than that everyone left. Entra reads the view
and re-creates whatever vanishes from it, so such an import is refused until an
operator confirms it (``ecmahost import NAME --allow-removals``).
"""

from __future__ import annotations

__all__ = ["DEFAULT_SHARE", "MIN_LIMIT", "refusal", "removal_limit"]

DEFAULT_SHARE = 0.10
"""Without ``import_max_removals``: at most this share of the connector's objects..."""
MIN_LIMIT = 10
"""...but never fewer than this many, so small spaces lose a user or two freely."""


def removal_limit(total: int, configured: int | None) -> int:
    """The most objects one import may remove out of ``total``: ``configured`` when
    set, else 10 % of them rounded down, at least 10."""
    if configured is not None:
        return configured
    return max(MIN_LIMIT, int(total * DEFAULT_SHARE))


def refusal(seen: int, removals: int, total: int, configured: int | None) -> str | None:
    """Why an import that read ``seen`` records and would remove ``removals`` of the
    ``total`` objects must not, or None when it may."""
    if removals == 0:
        return None
    if seen == 0:
        return f"the target is empty; it would remove all {removals} objects"
    limit = removal_limit(total, configured)
    if removals > limit:
        return (
            f"it would remove {removals} of {total} objects, more than the "
            f"{limit} import_max_removals allows"
        )
    return None
