"""py_workload.py — a real-program allocator workload for CPython (about 1 s).

Builds and tears down dicts, strings, lists and a little JSON, the way scripts do, and
prints one deterministic checksum line. Run unchanged under each allocator via LD_PRELOAD
by bench/run.py; the optional argument scales the amount of work (default 1.0).
Standard library only; output depends only on the scale, not on hash seeds or addresses.
"""
import hashlib
import json
import random
import sys


LETTERS = "".join(chr(97 + (i * 7919 + i // 26) % 26) for i in range(4096))


def word(rng, length):
    start = int(rng.random() * (len(LETTERS) - length))
    return LETTERS[start:start + length]


def dict_phase(rng, count, digest):
    table = {}
    for i in range(count):
        key = "k%d-%s" % (i, word(rng, 2 + int(rng.random() * 11)))
        table[key] = [i, key.upper(), {"n": i * 3}]
    for i, key in enumerate(list(table)):
        if i % 3 == 0:
            del table[key]
        elif i % 3 == 1:
            table[key][2]["s"] = key * 2
    total = 0
    for key, value in table.items():
        total += value[0] + len(value[1]) + len(value[2].get("s", ""))
    digest.update(str(total).encode())
    return table


def string_phase(rng, count, digest):
    parts = []
    for i in range(count):
        parts.append("%s:%d:%s" % (word(rng, 6), i, "x" * (i % 40)))
    text = ",".join(parts)
    fields = text.split(",")
    joined = " ".join(f.replace(":", "=").title() for f in fields[::2])
    pieces = [joined[i:i + 100] for i in range(0, len(joined), 100)]
    digest.update(str(len(text)).encode())
    digest.update(pieces[len(pieces) // 2].encode())


def list_phase(rng, count, digest):
    rows = [(rng.random(), i, str(i)) for i in range(count)]
    rows.sort()
    squares = [r[1] * r[1] for r in rows if r[1] % 2 == 0]
    nested = [[j for j in range(i % 50)] for i in range(count // 4)]
    flat = [x for sub in nested for x in sub]
    digest.update(str((rows[0][1], sum(squares) % 1000003, len(flat))).encode())


def json_phase(rng, count, digest):
    records = [
        {"id": i, "name": word(rng, 8), "tags": [word(rng, 3) for _ in range(i % 5)],
         "score": i * 0.5, "child": {"ok": i % 2 == 0}}
        for i in range(count)
    ]
    text = json.dumps(records, sort_keys=True)
    back = json.loads(text)
    digest.update(hashlib.sha256(text.encode()).digest())
    digest.update(str(sum(r["id"] for r in back)).encode())


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rng = random.Random(20240611)
    digest = hashlib.sha256()
    keep = []
    for _ in range(2):
        keep.append(dict_phase(rng, int(30000 * scale), digest))
        string_phase(rng, int(45000 * scale), digest)
        list_phase(rng, int(45000 * scale), digest)
        json_phase(rng, int(6000 * scale), digest)
        if len(keep) > 1:
            keep.pop(0)
    print("checksum", digest.hexdigest()[:16])


if __name__ == "__main__":
    main()
