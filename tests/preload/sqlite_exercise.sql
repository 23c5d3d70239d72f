-- sqlite_exercise.sql — an sqlite3 workload for the preload tests: inserts, an index, joins,
-- aggregates, window functions, json, updates, deletes and VACUUM on an on-disk database.
--
-- run_real.sh feeds it to the sqlite3 command-line shell once plainly and once under
-- libheaptrail-preload.so and requires identical output. Every value is computed, never random.
.bail on
.headers on
.mode list
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -2000;

CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customer(id),
  amount INTEGER NOT NULL,
  note TEXT
);

BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO customer SELECT i, printf('customer-%05d', i), 'city-' || (i * 7 % 37) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO orders
SELECT i, (i * 7919) % 2000 + 1, (i * 104729) % 10007,
       substr(replace(hex(zeroblob(i % 60)), '00', 'ab'), 1, i % 97) FROM n;
COMMIT;

CREATE INDEX orders_by_customer ON orders(customer_id, amount);
CREATE INDEX customer_by_city ON customer(city);

SELECT count(*) AS orders, sum(amount) AS total, max(length(note)) AS longest FROM orders;

SELECT c.city, count(*) AS orders, sum(o.amount) AS total
FROM orders o JOIN customer c ON c.id = o.customer_id
GROUP BY c.city ORDER BY total DESC, c.city LIMIT 5;

SELECT name, amount, rank
FROM (SELECT c.name, o.amount,
             rank() OVER (PARTITION BY c.city ORDER BY o.amount DESC, o.id) AS rank
      FROM orders o JOIN customer c ON c.id = o.customer_id
      WHERE c.city = 'city-3')
WHERE rank <= 3;

SELECT customer_id, group_concat(amount, '+') AS amounts
FROM (SELECT customer_id, amount FROM orders WHERE customer_id < 4
      ORDER BY customer_id, amount LIMIT 12)
GROUP BY customer_id;

SELECT json_group_array(json_object('id', id, 'amount', amount)) AS top
FROM (SELECT id, amount FROM orders ORDER BY amount DESC, id LIMIT 4);

UPDATE orders SET note = upper(coalesce(note, '')) || '!' WHERE amount % 13 = 0;
DELETE FROM orders WHERE amount % 5 = 0;
SELECT count(*) AS remaining, sum(length(note)) AS note_bytes FROM orders;

CREATE TABLE words AS
WITH RECURSIVE w(i, word) AS (
  SELECT 1, 'a' UNION ALL
  SELECT i + 1, substr(word || char(97 + (i * 11) % 26), -12) FROM w WHERE i < 20000)
SELECT i, word FROM w;
SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY n DESC, word LIMIT 3;

VACUUM;
PRAGMA integrity_check;
SELECT count(*) AS orders_after_vacuum FROM orders;
