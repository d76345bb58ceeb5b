def walk(volumes: list[float], method: str = "single") -> tuple[int, int, int]:
    """(poc, val, vah) indexes by the literal rules of docs/semantics.md, one step at a time."""
    n = len(volumes)
    top = max(volumes)
    mid2 = 0 + (n - 1)  # twice the middle index of the range
    poc = min((i for i in range(n) if volumes[i] == top), key=lambda i: (abs(2 * i - mid2), i))
    total = sum(volumes)
    target = 0.7 * total - 1e-9 * total
    lo = hi = poc
    acc = volumes[poc]
    per = 2 if method == "dual" else 1
    while acc < target and (lo > 0 or hi < n - 1):
        below = sum(volumes[max(0, lo - per) : lo]) if lo > 0 else None
        above = sum(volumes[hi + 1 : hi + 1 + per]) if hi < n - 1 else None
        if above is None or (below is not None and below >= above):
            acc += below
            lo = max(0, lo - per)
        else:
            acc += above
            hi = min(n - 1, hi + per)
    return poc, lo, hi
