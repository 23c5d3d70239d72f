-- sqlite_workload.sql — a real-program allocator workload for the sqlite3 shell (about 1 s).
-- Run as `sqlite3 :memory: < sqlite_workload.sql` under each allocator by bench/run.py.
-- One transaction inserts 200k rows (row by row, values derived from the row number so the
-- output is deterministic), then an index is built and a few grouped queries, an update and a
-- delete run; the query output is what run.py compares between allocators.
PRAGMA cache_size = -65536;

CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    category INTEGER NOT NULL,
    name TEXT NOT NULL,
    price REAL NOT NULL,
    note TEXT
);

BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO item (id, category, name, price, note)
SELECT i,
       (i * 7919) % 97,
       printf('item-%07d-%s', (i * 104729) % 1000003, substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 20, 1 + i % 7)),
       ((i * 2654435761) % 100000) / 100.0,
       CASE WHEN i % 5 = 0 THEN NULL ELSE printf('%.*c', 10 + (i * 31) % 90, char(97 + i % 26)) END
FROM n;
COMMIT;

CREATE INDEX item_category_price ON item (category, price);

SELECT category, count(*), round(sum(price), 2), max(length(note))
FROM item GROUP BY category ORDER BY category LIMIT 10;

SELECT category, min(price), max(price), count(DISTINCT substr(name, 14))
FROM item WHERE category BETWEEN 20 AND 29 GROUP BY category ORDER BY category;

SELECT count(*), group_concat(id, ',')
FROM (SELECT id FROM item WHERE category = 42 AND price BETWEEN 100 AND 120 ORDER BY id LIMIT 20);

UPDATE item SET note = upper(note) || '!' WHERE category % 3 = 0;
DELETE FROM item WHERE price < 50;

SELECT count(*), sum(length(note)), min(name), max(name) FROM item;
