"""Peak-memory helpers shared by the benchmarks (Linux /proc; ru_maxrss elsewhere).

On Linux ``ru_maxrss`` also counts the parent's RSS at the moment of ``exec``, which no
reset clears, so a benchmark parent holding a few hundred MB would hide every smaller
increase. ``VmHWM`` in ``/proc/self/status`` is the same high-water mark for this
process's own memory, and writing 5 to ``/proc/self/clear_refs`` resets it (Linux >= 4.0)
so that import-time peaks do not hide the measured work.
"""

from __future__ import annotations

import resource


def vm_kib(field: str = "VmHWM") -> int:
    """A ``/proc/self/status`` memory field in KiB (``VmHWM``, ``VmRSS``, ...).

    Off Linux, ``ru_maxrss`` stands in for any field.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True
