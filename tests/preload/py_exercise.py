# py_exercise.py — a Python workload for the preload tests: dicts, strings, lists, threads,
# json, re, big integers, bytearrays and a fork, printing only deterministic results.
#
# run_real.sh runs it with `python3 -I -B` once plainly and once under libheaptrail-preload.so
# and requires identical output. Nothing printed depends on hash seeds, timing or addresses.
import collections
import hashlib
import json
import os
import re
import threading


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dicts():
    table = {}
    for i in range(200000):
        table["key%d" % (i * 7919 % 100003)] = i
    for i in range(0, 200000, 3):
        table.pop("key%d" % (i * 7919 % 100003), None)
    nested = {i: {"sq": i * i, "s": str(i) * (i % 7)} for i in range(20000)}
    total = sum(v["sq"] for v in nested.values()) + sum(table.values())
    return "dicts: %d entries, %d" % (len(table), total)


def strings():
    parts = ["%05d:%s" % (i, "xyz"[i % 3] * (i % 50)) for i in range(50000)]
    text = ",".join(parts)
    upper = text.upper().replace("X", "ab").split(",")
    words = collections.Counter(p[-1:] for p in upper)
    built = ""
    for i in range(20000):  # grows one string in place: realloc of a big block
        built += chr(ord("a") + i % 26)
    return "strings: %d %s %s %s" % (len(text), digest(text), sorted(words.items())[:4],
                                     digest(built))


def lists():
    values = [(i * 2654435761) % 1000003 for i in range(300000)]
    values.sort()
    chunks = [values[i:i + 1000] for i in range(0, len(values), 1000)]
    merged = [x for chunk in reversed(chunks) for x in chunk[::-1]]
    unique = sorted(set(merged))
    return "lists: %d %d %d %d" % (len(merged), merged[0], merged[-1], len(unique))


def threads():
    results = [None] * 6

    def worker(index):
        local = {}
        for i in range(30000):
            local[i % 997] = local.get(i % 997, "") [-20:] + str(i * index)
        blob = json.dumps(local, sort_keys=True)
        results[index] = digest(blob)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return "threads: " + " ".join(results)


def json_round_trip():
    document = {
        "items": [{"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 5)] * (i % 4),
                   "price": i * 0.25} for i in range(20000)],
        "meta": {"count": 20000, "nested": [[i, [i, [i]]] for i in range(500)]},
    }
    text = json.dumps(document, sort_keys=True, indent=1)
    back = json.loads(text)
    again = json.dumps(back, sort_keys=True, indent=1)
    return "json: %d %s %s" % (len(text), digest(text), text == again)


def regexes():
    text = "\n".join("user%d@host%d.example id=%d value=%x" % (i, i % 17, i, i * 31)
                     for i in range(30000))
    emails = re.findall(r"(\w+)@(\w+)\.example", text)
    replaced = re.sub(r"id=(\d+)", lambda m: "id=<%s>" % m.group(1)[::-1], text)
    hosts = collections.Counter(host for _, host in emails)
    return "re: %d %s %s" % (len(emails), digest(replaced), hosts.most_common(3))


def numbers():
    factorial = 1
    for i in range(1, 3000):
        factorial *= i
    fib = [0, 1]
    for _ in range(2000):
        fib.append(fib[-1] + fib[-2])
    buffer = bytearray()
    for i in range(100000):
        buffer += bytes([i % 251])
    return "numbers: %d %s %d %s" % (len(hex(factorial)), digest(hex(fib[-1])), len(buffer),
                                     hashlib.sha256(buffer).hexdigest()[:16])


def forked():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child allocates, reports and leaves without cleanup
        os.close(read_end)
        payload = json.dumps({str(i): [i] * (i % 9) for i in range(5000)}, sort_keys=True)
        os.write(write_end, digest(payload).encode())
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 100).decode()
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return "fork: %s status=%d" % (answer, status)


for step in (dicts, strings, lists, threads, json_round_trip, regexes, numbers, forked):
    print(step())
