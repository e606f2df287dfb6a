# ivf_search returns what index scans return: rows visible to the
# statement's snapshot, k per query when the probed lists hold k visible
# rows, each row's tid being what SELECT ctid shows.
#
#  (a) another session's uncommitted INSERT is not returned (no dirty read);
#  (b) rows deleted (committed, not vacuumed) are not returned, and each
#      query still gets k rows;
#  (c) a REPEATABLE READ snapshot taken before a committed insert does not
#      see it;
#  (d) with deleted, HOT-updated and non-HOT-updated rows, the rows (ids,
#      order, distances) equal those of ORDER BY v <-> q LIMIT k through the
#      index with the same nprobe;
#  (e) ivf_recall and ivf_autotune count visible rows only, on both sides:
#      with nprobe = lists the scans are exact, so recall is 1;
#  (f) halfvec[] queries (the other signature): after (d)'s changes the
#      rows and distances equal those of the same queries as vector[],
#      another session's uncommitted insert stays invisible, and
#      ivf_recall is 1 at nprobe = lists.
#
# Each runs on the matrix and csr paths, and through the GPU worker on its
# CPU backend (ivf.gpu = on), which needs ivf in shared_preload_libraries.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = IvfTest::gpu_worker_node('search_vis', q{
autovacuum = off
ivf.gpu_memory_limit = 64MB
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');

# 3,000 rows in 10 lists; 12 queries near the data
$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v vector(4), pad int) WITH (fillfactor = 50);
INSERT INTO t SELECT i, ARRAY[(i % 10) * 5 + sin(i) * 2, (i % 7) * 4 + cos(i) * 2,
                              sin(i * 3) * 3, cos(i * 5) * 3]::vector, 0
FROM generate_series(1, 3000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 10);
CREATE TABLE qs (n int PRIMARY KEY, q vector(4));
INSERT INTO qs SELECT n, ARRAY[(n % 10) * 5 + 0.3, (n % 7) * 4 - 0.2, 0.1 * n, -0.05 * n]::vector
FROM generate_series(1, 12) n;

-- ids in rank order, and distances, per query: the index scan's ...
CREATE FUNCTION one_by_one(k int) RETURNS TABLE (n int, ids int[], dists real[]) LANGUAGE sql AS $$
  SELECT qs.n, array_agg(s.id ORDER BY s.r), array_agg(s.d ORDER BY s.r)
  FROM qs CROSS JOIN LATERAL
    (SELECT id, (v <-> qs.q)::real AS d, row_number() OVER () AS r FROM
      (SELECT id, v FROM t ORDER BY v <-> qs.q LIMIT k) x) s
  GROUP BY qs.n $$ SET enable_seqscan = off SET enable_bitmapscan = off;
-- ... and ivf_search's, joined on ctid (a tid of no visible row drops out)
CREATE FUNCTION batch(k int) RETURNS TABLE (n int, ids int[], dists real[], rows bigint) LANGUAGE sql AS $$
  SELECT s.query, array_agg(t.id ORDER BY s.rank), array_agg(s.distance ORDER BY s.rank), count(*)
  FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), k) s
  LEFT JOIN t ON t.ctid = s.tid
  GROUP BY s.query $$;
-- the queries where they differ (none: empty string)
CREATE FUNCTION diff(k int) RETURNS text LANGUAGE sql AS $$
  SELECT left(coalesce(string_agg(format('q%s: scan %s %s, batch %s %s (%s rows)', n, a.ids, a.dists,
                                         b.ids, b.dists, b.rows), '; ' ORDER BY n), ''), 400)
  FROM one_by_one(k) a FULL JOIN batch(k) b USING (n)
  WHERE a.ids IS DISTINCT FROM b.ids OR a.dists IS DISTINCT FROM b.dists
     OR b.rows IS DISTINCT FROM cardinality(a.ids) $$;
-- rows returned per query that are not visible rows of t
CREATE FUNCTION stray(k int) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), k) s
  WHERE NOT EXISTS (SELECT FROM t WHERE t.ctid = s.tid) $$;
});

ok(IvfTest::poll_until(
		sub {
			$node->safe_psql('postgres', 'SELECT state FROM ivf_gpu_stats') eq 'ready';
		},
		60),
	'the GPU worker (CPU backend) is ready');

my %modes = (
	matrix => 'SET ivf.search_mode = matrix; SET ivf.gpu = off;',
	csr => 'SET ivf.search_mode = csr; SET ivf.gpu = off;',
	gpu => 'SET ivf.gpu = on;');
my $settings = 'SET ivf.nprobe = 3;';

sub gpu_queries
{
	return $node->safe_psql('postgres', 'SELECT queries FROM ivf_gpu_stats');
}

# (a) an uncommitted insert of a row equal to query 1 (distance 0)
{
	my $bg = $node->background_psql('postgres');
	my $ctid = $bg->query_safe(
		q{BEGIN; INSERT INTO t SELECT 900001, q, 0 FROM qs WHERE n = 1 RETURNING ctid});
	like($ctid, qr/^\(\d+,\d+\)$/, "(a) the other session's insert is at $ctid");
	for my $m (sort keys %modes)
	{
		my $before = gpu_queries();
		my $r = $node->safe_psql('postgres',
			"$settings $modes{$m}
			 SELECT count(*) FILTER (WHERE tid = '$ctid'), count(*), min(distance)
			 FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs WHERE n = 1), 5)");
		my ($dirty, $rows, $mind) = split /\|/, $r;
		is($dirty, 0, "(a, $m) the uncommitted row is not returned");
		is($rows, 5, "(a, $m) 5 rows");
		ok($mind > 0, "(a, $m) no row at distance 0 (nearest $mind)");
		cmp_ok(gpu_queries(), '>', $before, "(a, $m) the worker answered") if $m eq 'gpu';
	}
	$bg->query_safe('ROLLBACK');
	$bg->quit;
}

# (b) the 40 nearest rows of queries 2..5 deleted, committed, not vacuumed
$node->safe_psql(
	'postgres', q{
DELETE FROM t WHERE id IN
  (SELECT x.id FROM qs CROSS JOIN LATERAL
     (SELECT id FROM t ORDER BY t.v <-> qs.q LIMIT 40) x WHERE qs.n BETWEEN 2 AND 5)});
for my $m (sort keys %modes)
{
	for my $k (10, 25)
	{
		is($node->safe_psql('postgres', "$settings $modes{$m} SELECT stray($k)"),
			0, "(b, $m, k = $k) no deleted row returned");
		is( $node->safe_psql('postgres',
				"$settings $modes{$m} SELECT count(*) FROM batch($k) WHERE rows = $k"),
			12, "(b, $m, k = $k) $k rows for each of the 12 queries");
		is($node->safe_psql('postgres', "$settings $modes{$m} SELECT diff($k)"),
			'', "(b, $m, k = $k) those of the index scan");
	}
}

# (c) REPEATABLE READ: a snapshot older than a committed insert
{
	my $rr = $node->background_psql('postgres');
	$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t');
	my $ctid = $node->safe_psql('postgres',
		q{INSERT INTO t SELECT 900002, q, 0 FROM qs WHERE n = 6 RETURNING ctid});
	for my $m (sort keys %modes)
	{
		my $r = $rr->query_safe(
			"$settings $modes{$m}
			 SELECT count(*) FILTER (WHERE tid = '$ctid'), count(*)
			 FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs WHERE n = 6), 5)");
		is($r, '0|5', "(c, $m) the older snapshot does not see the committed insert");
	}
	$rr->query_safe('COMMIT');
	is( $rr->query_safe(
			"$settings SELECT count(*) FROM ivf_search('t_idx',
			   (SELECT array_agg(q ORDER BY n) FROM qs WHERE n = 6), 5) WHERE tid = '$ctid'"),
		1, '(c) a new snapshot sees it, nearest');
	$rr->quit;
}

# (d) HOT updates (pad is not indexed, fillfactor leaves room), updates of
# v (new index entries), updates of id (new index entries with the same
# vector: the dead one is as near), and the deletes above
$node->safe_psql(
	'postgres', q{
UPDATE t SET pad = pad + 1 WHERE id % 3 = 0;
UPDATE t SET pad = pad + 1 WHERE id % 6 = 0;
UPDATE t SET v = v + '[0.5,0.25,0,0]' WHERE id % 11 = 0;
UPDATE t SET id = id + 100000 WHERE id % 13 = 0;
DELETE FROM t WHERE id % 17 = 0;
});
ok( IvfTest::poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT n_tup_hot_upd > 500 FROM pg_stat_user_tables WHERE relname = 't'})
			  eq 't';
		},
		30),
	'(d) HOT updates happened');
for my $m (sort keys %modes)
{
	for my $k (1, 10, 40)
	{
		my $before = gpu_queries();
		is($node->safe_psql('postgres', "$settings $modes{$m} SELECT diff($k)"),
			'', "(d, $m, k = $k) same rows, order and distances as the index scan");
		cmp_ok(gpu_queries(), '>', $before, "(d, $m, k = $k) the worker answered")
		  if $m eq 'gpu';
	}
}
# and with every list probed: exact, as a sequential scan orders them
is( $node->safe_psql('postgres',
		q{SET ivf.nprobe = 10; SET ivf.gpu = off; SET ivf.search_mode = csr; SET enable_indexscan = off;
		  SELECT count(*) FROM (SELECT * FROM batch(10)) b JOIN
		    (SELECT qs.n, array_agg(x.id ORDER BY x.r) AS ids FROM qs CROSS JOIN LATERAL
		       (SELECT id, row_number() OVER () AS r FROM
		          (SELECT id FROM t ORDER BY v <-> qs.q, id LIMIT 10) y) x GROUP BY qs.n) e
		    USING (n) WHERE b.ids = e.ids}),
	12, '(d) nprobe = lists: the exact nearest visible rows');

# (e) recall counts visible rows on both sides
is( $node->safe_psql('postgres',
		q{SET ivf.nprobe = 10;
		  SELECT ivf_recall('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), 10)}),
	1, '(e) ivf_recall with nprobe = lists is 1');
is( $node->safe_psql('postgres',
		q{SET client_min_messages = warning;
		  SELECT max(recall) FROM ivf_autotune('t_idx', 0.9, 10, 100, false)}),
	1, '(e) ivf_autotune: its most accurate point (nprobe = lists) has recall 1');

# (f) halfvec[] queries: the queries rounded to half, then the same rows
# and distances as those values given as vector[]
my $hq = q{(SELECT array_agg(q::halfvec ORDER BY n) FROM qs)};
my $hq_as_vector = q{(SELECT array_agg(q::halfvec::vector ORDER BY n) FROM qs)};
my $rows = q{SELECT string_agg(query || ':' || rank || ':' || tid::text || ':' || distance::text, ' '
	ORDER BY query, rank) FROM ivf_search('t_idx', %s, 10)};
for my $m (sort keys %modes)
{
	my $before = gpu_queries();
	my $h = $node->safe_psql('postgres', "$settings $modes{$m} " . sprintf($rows, $hq));
	is($h, $node->safe_psql('postgres', "$settings $modes{$m} " . sprintf($rows, $hq_as_vector)),
		"(f, $m) halfvec[] queries: the rows and distances of the same values as vector[]");
	like($h, qr/^1:1:/, "(f, $m) and some rows");
	cmp_ok(gpu_queries(), '>', $before, "(f, $m) the worker answered") if $m eq 'gpu';
}
{
	my $bg = $node->background_psql('postgres');
	my $ctid = $bg->query_safe(
		q{BEGIN; INSERT INTO t SELECT 900003, q::halfvec::vector, 0 FROM qs WHERE n = 7 RETURNING ctid});
	for my $m (sort keys %modes)
	{
		is( $node->safe_psql('postgres',
				"$settings $modes{$m} SELECT count(*) FILTER (WHERE tid = '$ctid') || '|' || count(*)
				 FROM ivf_search('t_idx', ARRAY[(SELECT q::halfvec FROM qs WHERE n = 7)], 5)"),
			'0|5', "(f, $m) halfvec[] queries do not see an uncommitted insert");
	}
	$bg->query_safe('COMMIT');
	$bg->quit;
	is( $node->safe_psql('postgres',
			"$settings SELECT tid FROM ivf_search('t_idx', ARRAY[(SELECT q::halfvec FROM qs WHERE n = 7)], 1)"),
		$ctid, '(f) once committed, it is the nearest (distance 0)');
}
is( $node->safe_psql('postgres', "SET ivf.nprobe = 10; SELECT ivf_recall('t_idx', $hq, 10)"),
	1, '(f) ivf_recall with halfvec[] queries and nprobe = lists is 1');

$node->stop;
done_testing();
