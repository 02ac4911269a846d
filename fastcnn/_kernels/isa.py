"""The one rule of every kernel module's `set_isa(name)` (tests and benchmarks force an
ISA): 'auto' is what the CPU has, a known name gives its level, and asking for more
than the CPU supports raises ValueError."""


def choose(name, levels, hw):
    """The level `name` selects among `levels` ({name: level}) on a CPU at level `hw`."""
    if name == "auto":
        return hw
    if name not in levels:
        raise ValueError(f"unknown ISA {name!r}; expected one of {sorted(levels)} or 'auto'")
    if levels[name] > hw:
        raise ValueError(f"ISA {name!r} not supported by this CPU")
    return levels[name]


def name_of(level, levels):
    """The name of `level` in `levels` ({name: level}), the inverse `get_isa` reports."""
    for k, v in levels.items():
        if v == level:
            return k
    return "portable"
