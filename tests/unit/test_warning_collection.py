"""Library warnings collected while files are read in several threads at once (the GUI's workers)."""

from __future__ import annotations

import threading
import time
import warnings

from ctviewer.io.guards import collected_warnings


def test_two_threads_reading_at_once_keep_their_own_warnings_and_leave_warnings_working():
    original = warnings.showwarning
    results: dict[str, list[str]] = {}
    entered = threading.Event()

    def read(name: str, first: bool) -> None:
        with collected_warnings() as said:
            if first:
                entered.set()
                time.sleep(0.2)            # the other thread tries to start its read meanwhile
            warnings.warn(f"odd header in {name}", UserWarning, stacklevel=1)
        results[name] = list(said)

    a = threading.Thread(target=read, args=("a.nii", True))
    a.start()
    entered.wait(5)
    b = threading.Thread(target=read, args=("b.nii", False))
    b.start()
    a.join(5)
    b.join(5)
    assert results == {"a.nii": ["odd header in a.nii"], "b.nii": ["odd header in b.nii"]}
    assert warnings.showwarning is original     # no thread left its recorder installed
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        warnings.warn("after both reads", UserWarning, stacklevel=1)
    assert [str(w.message) for w in later] == ["after both reads"]
