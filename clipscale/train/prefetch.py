"""Start a slow-to-start stream early: the first item is pulled in a background thread while the
caller does other work, then the items come in their usual order.

Why: a Ray Data stream's first batch waits for its split coordinator and decoding tasks to start
(new processes), which took as long as building the DeepSpeed engine and the evaluator together
on a 2-core machine (docs/throughput.md); a fresh run overlaps the two.
"""
from __future__ import annotations

import threading
from typing import Iterator, TypeVar

T = TypeVar("T")


class FirstItemEarly:
    """Wraps an iterator; ``iter()`` yields exactly the items the iterator would have, in order,
    the first one pulled ahead of time. Iterate it once."""

    def __init__(self, items: Iterator[T]):
        self._items, self._first, self._error, self._done = items, None, None, False
        self._thread = threading.Thread(target=self._pull, name="clipscale-first-item", daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        try:
            self._first = next(self._items)
        except StopIteration:
            self._done = True
        except BaseException as e:  # raised in the caller's thread, where it is iterated
            self._error = e

    def __iter__(self) -> Iterator[T]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._done:
            return
        yield self._first
        yield from self._items
