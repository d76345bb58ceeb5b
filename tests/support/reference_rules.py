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


def literal_smooth(volumes: list[float]) -> list[float]:
    """The centred moving average applied twice, in the arithmetic docs/semantics.md
    fixes: running sums from the lowest bin, a window's sum as the difference of two of
    them, times the reciprocal of its bin count."""
    n = len(volumes)
    half = max(1, n // 80)
    values = list(volumes)
    for _ in range(2):
        running, total = [], 0.0
        for v in values:
            total += v
            running.append(total)
        smooth = []
        for i in range(n):
            left, right = max(0, i - half), min(n - 1, i + half)
            window = running[right] - (running[left - 1] if left > 0 else 0.0)
            smooth.append(window * (1.0 / (right - left + 1)))
        values = smooth
    return values


def literal_nodes(
    volumes: list[float], count: int = 5, prominence: float = 0.1, separation: float = 0.05
) -> list[tuple[str, int, int, int, float]]:
    """(kind, centre, low, high, prominence) of a profile's nodes by the words of
    docs/semantics.md, one step at a time; LVNs then HVNs, each by bin."""
    n = len(volumes)
    if n < 3:
        return []
    smooth = literal_smooth(volumes)
    need = prominence * max(smooth)
    gap = max(1, int(separation * n))
    out: list[tuple[str, int, int, int, float]] = []
    for kind, sign in (("LVN", -1.0), ("HVN", 1.0)):
        values = [sign * v for v in smooth]
        candidates = []
        i = 0
        while i < n:
            j = i
            while j + 1 < n and values[j + 1] == values[i]:
                j += 1
            x = values[i]
            if i > 0 and j < n - 1 and values[i - 1] < x and values[j + 1] < x:
                left = [values[k] for k in _walk(values, range(i - 1, -1, -1), x)]
                right = [values[k] for k in _walk(values, range(j + 1, n), x)]
                prom = x - max(min(left), min(right))
                if prom >= need:
                    candidates.append(((i + j) // 2, prom))
            i = j + 1
        kept: list[tuple[str, int, int, int, float]] = []
        for centre, prom in sorted(candidates, key=lambda c: (-c[1], c[0])):
            if len(kept) == count:
                break
            if any(abs(node[1] - centre) < gap for node in kept):
                continue
            reach = values[centre] - prom / 2
            low = centre
            while low > 0 and values[low - 1] >= reach:
                low -= 1
            high = centre
            while high < n - 1 and values[high + 1] >= reach:
                high += 1
            kept.append((kind, centre, low, high, prom))
        out += sorted(kept, key=lambda node: node[1])
    return out


def _walk(values: list[float], steps: range, x: float) -> list[int]:
    """The bins a prominence walk passes: until a higher value than x, or the edge."""
    passed = []
    for k in steps:
        if values[k] > x:
            break
        passed.append(k)
    return passed
