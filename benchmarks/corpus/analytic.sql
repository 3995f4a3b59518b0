-- Analytic queries over the demo datastack using the constructs of issue 10: the corpus of
-- benchmarks/analytic.py (parse time vs sqlglot's duckdb dialect, plan time on the demo catalog).
-- One statement per entry, separated by semicolons; every one parses in CQL and in sqlglot.
WITH bc AS (SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC')
SELECT s.pre_pt_root_id, COUNT(*) AS n FROM synapses_pni_2 s JOIN bc ON s.post_pt_root_id = bc.pt_root_id
GROUP BY s.pre_pt_root_id ORDER BY n DESC LIMIT 10;
WITH cells AS (SELECT pt_root_id, cell_type FROM aibs_soma_nuc_metamodel_preds_v117),
     outs AS (SELECT pre_pt_root_id, post_pt_root_id FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885)
SELECT c.cell_type, COUNT(*) AS n FROM outs o JOIN cells c ON o.post_pt_root_id = c.pt_root_id GROUP BY c.cell_type;
WITH a AS (SELECT id, volume FROM nucleus_detection_v0 WHERE volume > 200),
     b AS (SELECT id FROM a WHERE volume < 400),
     c AS (SELECT COUNT(*) AS n FROM b)
SELECT n FROM c;
WITH t AS (SELECT cell_type, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type)
SELECT t1.cell_type, t1.n, t2.n AS total FROM t t1 JOIN (SELECT SUM(n) AS n FROM t) AS t2 ON TRUE;
SELECT id, CASE WHEN volume > 300 THEN 'big' WHEN volume > 100 THEN 'medium' ELSE 'small' END AS size_class
FROM nucleus_detection_v0 WHERE pt_root_id <> 0;
SELECT cell_type, CASE cell_type WHEN 'BC' THEN 'inhibitory' WHEN 'MC' THEN 'inhibitory' ELSE 'other' END AS cls
FROM aibs_soma_nuc_metamodel_preds_v117;
SELECT CAST(pt_root_id AS VARCHAR) AS root, TRY_CAST(cell_type AS BIGINT) AS n, volume::DOUBLE AS v
FROM aibs_soma_nuc_metamodel_preds_v117 LIMIT 100;
SELECT COALESCE(superceded_id, 0) AS sup, NULLIF(pt_root_id, 0) AS root, GREATEST(id, 10) AS g, LEAST(id, 10) AS l
FROM nucleus_detection_v0 LIMIT 50;
SELECT LOWER(cell_type) AS t, LENGTH(cell_type) AS len, UPPER(classification_system) AS sys,
       ROUND(volume, 1) AS v, SQRT(volume) AS r FROM aibs_soma_nuc_metamodel_preds_v117;
SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'
UNION SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'MC';
SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC'
UNION ALL SELECT pt_root_id FROM baylor_log_reg_cell_type_coarse_v1 WHERE cell_type = 'inhibitory'
ORDER BY pt_root_id LIMIT 100;
SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117
INTERSECT SELECT pt_root_id FROM proofreading_status_public_release;
SELECT pt_root_id FROM proofreading_status_public_release
EXCEPT SELECT pt_root_id FROM aibs_soma_nuc_metamodel_preds_v117 WHERE cell_type = 'BC';
SELECT id, pt_root_id FROM nucleus_detection_v0 WHERE id < 1000
EXCEPT SELECT id, pt_root_id FROM nucleus_detection_v0 WHERE id < 500 ORDER BY id;
SELECT id, size, ROW_NUMBER() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC) AS rn
FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885;
SELECT post_pt_root_id, size, RANK() OVER (ORDER BY size DESC) AS r, DENSE_RANK() OVER (ORDER BY size DESC) AS dr
FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885;
SELECT id, size, SUM(size) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS running
FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885;
SELECT id, LAG(size, 1) OVER (PARTITION BY post_pt_root_id ORDER BY id) AS prev,
       LEAD(size) OVER (PARTITION BY post_pt_root_id ORDER BY id) AS next
FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885;
SELECT id, NTILE(4) OVER (ORDER BY volume) AS quartile, FIRST_VALUE(id) OVER (PARTITION BY cell_type ORDER BY volume) AS f
FROM aibs_soma_nuc_metamodel_preds_v117;
SELECT pre_pt_root_id, post_pt_root_id, size FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885
QUALIFY ROW_NUMBER() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC) = 1;
SELECT id, AVG(size) OVER w AS mean, COUNT(*) OVER w AS n FROM synapses_pni_2
WHERE pre_pt_root_id = 864691135808473885 WINDOW w AS (PARTITION BY post_pt_root_id);
SELECT cell_type, COUNT(*) AS n, RANK() OVER (ORDER BY COUNT(*) DESC) AS r
FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY cell_type;
SELECT d.post_pt_root_id, d.n FROM (SELECT post_pt_root_id, COUNT(*) AS n FROM synapses_pni_2
WHERE pre_pt_root_id = 864691135808473885 GROUP BY post_pt_root_id) AS d WHERE d.n > 2;
SELECT x.t, MAX(x.v) AS biggest FROM (SELECT cell_type AS t, volume AS v FROM aibs_soma_nuc_metamodel_preds_v117) AS x
GROUP BY x.t;
SELECT c.id, c.cell_type FROM aibs_soma_nuc_metamodel_preds_v117 c
WHERE EXISTS (SELECT 1 FROM proofreading_status_public_release p WHERE p.pt_root_id = c.pt_root_id);
SELECT c.id FROM aibs_soma_nuc_metamodel_preds_v117 c WHERE c.cell_type = 'BC'
AND NOT EXISTS (SELECT 1 FROM proofreading_status_public_release p WHERE p.pt_root_id = c.pt_root_id);
SELECT id, volume, (SELECT AVG(volume) FROM nucleus_detection_v0) AS mean_volume FROM nucleus_detection_v0
WHERE volume > (SELECT AVG(volume) FROM nucleus_detection_v0);
SELECT cell_type, classification_system, COUNT(*) AS n FROM aibs_soma_nuc_metamodel_preds_v117 GROUP BY ALL;
SELECT * FROM (SELECT pre.cell_type AS pre_type, post.cell_type AS post_type FROM synapses_pni_2 s
JOIN aibs_soma_nuc_metamodel_preds_v117 pre ON s.pre_pt_root_id = pre.pt_root_id
JOIN aibs_soma_nuc_metamodel_preds_v117 post ON s.post_pt_root_id = post.pt_root_id
WHERE s.pre_pt_root_id = 864691135808473885) AS t
PIVOT (COUNT(*) FOR post_type IN ('BC', 'MC', '23P'));
SELECT * FROM (SELECT root_id, n_input, n_output FROM synapses_pni_2_in_out_degree WHERE root_id = 864691135808473885) AS d
UNPIVOT (n FOR direction IN (n_input, n_output));
SELECT s.id, f.label FROM 'cells.csv' AS f JOIN synapses_pni_2 s ON s.pre_pt_root_id = f.root_id;
SELECT f.label, COUNT(*) AS n FROM read_parquet('cells.parquet') AS f
JOIN aibs_soma_nuc_metamodel_preds_v117 c ON c.pt_root_id = f.root_id GROUP BY f.label;
SELECT id FROM synapses_pni_2 WHERE pre_pt_root_id IN (SELECT root_id FROM 'cells.csv' AS f WHERE label = 'exc');
SELECT c.pt_root_id, c.cell_type, p.status_axon FROM aibs_soma_nuc_metamodel_preds_v117 c
LEFT JOIN proofreading_status_public_release p ON p.pt_root_id = c.pt_root_id WHERE c.cell_type = 'BC';
SELECT c.pt_root_id, p.status_axon FROM proofreading_status_public_release p
RIGHT JOIN aibs_soma_nuc_metamodel_preds_v117 c ON p.pt_root_id = c.pt_root_id WHERE c.cell_type = 'MC';
WITH ranked AS (SELECT post_pt_root_id, size, ROW_NUMBER() OVER (PARTITION BY post_pt_root_id ORDER BY size DESC) AS rn
FROM synapses_pni_2 WHERE pre_pt_root_id = 864691135808473885)
SELECT post_pt_root_id, CASE WHEN rn = 1 THEN 'strongest' ELSE 'other' END AS kind, COUNT(*) AS n
FROM ranked GROUP BY ALL;
SELECT 1 + 1 AS two, CONCAT('a', 'b') AS ab;
