# The per-backend cache of an ivfflat index (rd_amcache: the meta page, the
# centroids, their codes and the recent-buffer hints).
#
# (1) PostgreSQL frees only the rd_amcache chunk when it reloads an open
#     index's relcache entry (RelationReloadIndexInfo) and keeps the
#     entry's index context, so everything the cache holds must live in
#     that one chunk.  200 times in one transaction: ALTER INDEX (whose
#     invalidation is processed while the index is open) and a scan, which
#     rebuilds the cache; the index's memory context must not grow by the
#     centroids each time.  Needs pg_backend_memory_contexts (14+).
# (2) Nothing the cache holds changes in place; REINDEX, TRUNCATE,
#     VACUUM FULL and table rewrites write a new relfilenode and send a
#     relcache invalidation, which must replace the cache.  A long-lived
#     session with a warm cache keeps scanning and inserting while another
#     session rebuilds the index in those ways: its scans stay exact, its
#     inserts land in the right lists (ivf_check, and nprobe = 1 finds each
#     row).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('relcache');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
autovacuum = off
max_parallel_workers_per_gather = 0
max_parallel_maintenance_workers = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');

my $dims = 128;
my $lists = 200;

# deterministic rows: element j of row i is sin(i * j)
sub vec_of
{
	my ($i, $d) = @_;
	return '[' . join(',', map { sprintf('%.6f', sin($i * $_)) } 1 .. $d) . ']';
}

# (1) the cache is one chunk: relcache reloads leak nothing
SKIP:
{
	skip 'pg_backend_memory_contexts needs PostgreSQL 14', 3
	  if $node->safe_psql('postgres', 'SHOW server_version_num') < 140000;

	$node->safe_psql(
		'postgres', qq{
CREATE TABLE t (id int, v vector($dims));
INSERT INTO t SELECT i, ('[' || array_to_string(ARRAY(
  SELECT round(sin(i * j)::numeric, 6) FROM generate_series(1, $dims) j), ',') || ']')::vector
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = $lists);
});
	my $q = vec_of(7.5, $dims);
	my $ctx = q{(SELECT sum(total_bytes) FROM pg_backend_memory_contexts
  WHERE name = 'index info' AND ident = 't_idx')};
	my $out = $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off;
SET enable_bitmapscan = off;
BEGIN;
SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '$q' LIMIT 3) s;
SELECT $ctx AS before \\gset
DO \$\$
BEGIN
	FOR i IN 1..200 LOOP
		EXECUTE format('ALTER INDEX t_idx SET (nprobe = %s)', 1 + i % 7);
		PERFORM id FROM t ORDER BY v <-> '$q' LIMIT 3;
	END LOOP;
END
\$\$;
SELECT :before, $ctx - :before;
SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '$q' LIMIT 3) s;
COMMIT;
});
	my ($n1, $sizes, $n2) = split /\n/, $out;
	my ($before, $growth) = split /\|/, $sizes;
	my $matrix = $lists * $dims * 4;
	note "index context: $before bytes, grew by $growth bytes over 200 reloads "
	  . "(centroid matrix: $matrix bytes)";
	is($n1 . ',' . $n2, '3,3', 'scans before and after the reloads return their rows');
	cmp_ok($before, '>', 0, 'the index has its memory context');
	cmp_ok($growth, '<', 10 * $matrix,
		'200 relcache reloads and cache rebuilds leave the index context its size');
}

# (2) a warm cache in a long-lived session across rebuilds by another one
$node->safe_psql(
	'postgres', q{
CREATE TABLE s (id int, v vector(4));
INSERT INTO s SELECT i, ARRAY[sin(i), cos(i), sin(i * 3), cos(i * 5)]::vector
FROM generate_series(1, 300) i;
CREATE INDEX s_idx ON s USING ivfflat (v) WITH (lists = 3);
});

my $sq = '[0.3,-0.2,0.5,0.1]';
my $exact_sql =
  qq{SET enable_indexscan = off; SELECT string_agg(id::text, ',' ORDER BY v <-> '$sq', id) FROM s};
my $scan_sql = qq{SELECT string_agg(id::text, ',') FROM (SELECT id FROM s ORDER BY v <-> '$sq') x};

my $bg = $node->background_psql('postgres');
$bg->query_safe('SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = 1000');

# the rows of s that A's nprobe = 1 scans for their own vector miss
sub lost_by_bg
{
	my ($from, $to) = @_;
	return $bg->query_safe(
		qq{SET ivf.nprobe = 1;
SELECT count(*) FROM s o WHERE id BETWEEN $from AND $to AND NOT EXISTS
  (SELECT 1 FROM (SELECT id FROM s ORDER BY v <-> o.v LIMIT 3) n WHERE n.id = o.id);
SET ivf.nprobe = 1000;});
}

my $next = 1000;
my @steps = (
	[ 'warm cache', '' ],
	[ 'REINDEX with 9 lists', 'ALTER INDEX s_idx SET (lists = 9); REINDEX INDEX s_idx' ],
	[ 'REINDEX with 2 lists', 'ALTER INDEX s_idx SET (lists = 2); REINDEX INDEX s_idx' ],
	[ 'VACUUM FULL', 'ALTER INDEX s_idx SET (lists = 5); VACUUM FULL s' ],
	[
		'TRUNCATE and new rows',
		q{TRUNCATE s; INSERT INTO s SELECT i, ARRAY[cos(i), sin(i * 2), 0.5, sin(i)]::vector
  FROM generate_series(1, 200) i}
	],
	[ 'REINDEX of the new rows', 'REINDEX TABLE s' ],
	[ 'a table rewrite (ALTER COLUMN TYPE)', q{ALTER TABLE s ALTER COLUMN id TYPE bigint} ],);
for my $step (@steps)
{
	my ($what, $sql) = @$step;
	$node->safe_psql('postgres', $sql) if $sql ne '';
	is($bg->query_safe($scan_sql), $node->safe_psql('postgres', $exact_sql),
		"$what: the long-lived session's scan probing every list is exact");
	# inserts through A's cache go to the lists the new centroids choose
	my $from = $next;
	my $to = $next + 49;
	$bg->query_safe(
		qq{INSERT INTO s SELECT i, ARRAY[sin(i * 0.7), cos(i * 1.3), sin(i * 0.1), 0.2]::vector
FROM generate_series($from, $to) i});
	$next += 50;
	is(lost_by_bg($from, $to), 0, "$what: rows inserted by the session are found in their nearest list");
	is($bg->query_safe($scan_sql), $node->safe_psql('postgres', $exact_sql),
		"$what: and its exact scan returns them");
	ivf_check_clean($node, 'postgres', 's_idx', "$what: ivf_check finds no problem");
}
$bg->quit;

$node->stop;
done_testing();
