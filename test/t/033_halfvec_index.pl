# halfvec indexes (list pages of half floats) where pg_regress cannot go:
#
#  - crash recovery (database postgres, standalone extension ivf):
#    inserts into halfvec indexes (one-page groups with codes, two-page
#    groups without), deletes and VACUUM after a checkpoint, then an
#    immediate stop; with wal_consistency_checking = 'generic' the replay
#    must give the primary's pages, ivf_check must find nothing and a scan
#    of every list must return the sequential scan's rows in its order;
#  - the GPU worker (its CPU implementation) takes a halfvec index, whose
#    lists the upload widens to float, and answers ivf_search as the
#    backend does;
#  - ivf_export_faiss of a halfvec index (a Faiss file is float: the half
#    vectors widened) rebuilt as a vector index with centroids = the file;
#    ivf_recall (1 at nprobe = lists) and ivf_autotune on a halfvec index;
#  - ivf_pgvector on pgvector's own halfvec (database pgv): the three
#    halfvec classes beside pgvector's HNSW halfvec index; at nprobe =
#    lists the ivf scan returns exactly the sequential scan's rows, in its
#    order, with its distances; ivf_check, ivf_index_info (element type
#    halfvec) and ivf_search;
#  - a streaming standby (wal_consistency_checking = 'generic' there too,
#    from the primary's configuration): the standalone halfvec_l2 / ip /
#    cosine classes and, under ivf_pgvector, the halfvec and vector
#    classes; an index built, inserts, deletes, VACUUM and inserts into
#    the freed slots on the primary; on the standby, ivf_check finds
#    nothing and an index scan of every list returns the primary's rows,
#    order and distances (for l2 and ip: the sequential scan's).
#
# The data are multiples of 1/8 in [-4, 4], exact in half precision, so
# l2 and inner-product distances are exact in float whatever the order of
# the sums (cosine, whose unit vectors are rounded to half, is compared to
# half precision).
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = IvfTest::gpu_worker_node(
	'halfvec_index', q{
wal_consistency_checking = 'generic'
autovacuum = off
max_parallel_workers_per_gather = 0
}, allows_streaming => 1);
$node->start;

# rows: n rows of d dimensions, multiples of 1/8 (seeded)
sub fill_sql
{
	my ($table, $type, $d, $from, $to) = @_;
	return "INSERT INTO $table SELECT i, (SELECT array_agg(round(random() * 64) / 8 - 4) "
	  . "FROM generate_series(1, $d) WHERE i > 0)::$type($d) FROM generate_series($from, $to) i";
}

# "id:distance" of every row nearest first: through the index (every list
# probed) or a sequential scan (ties by ctid, as the index orders them)
sub knn
{
	my ($db, $table, $op, $q, $index) = @_;
	return knn_on($node, $db, $table, $op, $q, $index);
}

# the same on a given node (the standby)
sub knn_on
{
	my ($n, $db, $table, $op, $q, $index) = @_;
	my $set = $index
	  ? 'SET enable_seqscan = off; SET ivf.nprobe = 1000;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	my $order = $index ? "v $op '$q'" : "v $op '$q', ctid";
	return $n->safe_psql($db,
		"$set SELECT string_agg(id || ':' || (v $op '$q'), ' ') FROM "
		  . "(SELECT id, v FROM $table WHERE v IS NOT NULL ORDER BY $order) s");
}

# ------------------------------------------------------------ crash recovery
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');
$node->safe_psql(
	'postgres', join(";\n",
		'SELECT setseed(0.33)',
		'CREATE TABLE h (id int PRIMARY KEY, v halfvec(32))',
		fill_sql('h', 'halfvec', 32, 1, 3000),
		'CREATE INDEX h_l2 ON h USING ivfflat (v halfvec_l2_ops) WITH (lists = 8, prefilter = on)',
		'CREATE INDEX h_ip ON h USING ivfflat (v halfvec_ip_ops) WITH (lists = 8, prefilter = off)',
		'CREATE TABLE w (id int PRIMARY KEY, v halfvec(5000))',
		fill_sql('w', 'halfvec', 5000, 1, 40),
		'CREATE INDEX w_l2 ON w USING ivf (v halfvec_l2_ops) WITH (lists = 2, prefilter = off)',
		'CHECKPOINT'));
is(ivf_index_info($node, 'postgres', 'w_l2')->{vectors_per_group}, 1,
	'5000 half dimensions: a group of two pages holds one vector');

$node->safe_psql(
	'postgres', join(";\n",
		fill_sql('h', 'halfvec', 32, 3001, 4000),
		'DELETE FROM h WHERE id % 5 = 0',
		'VACUUM h',
		fill_sql('h', 'halfvec', 32, 4001, 4500),
		fill_sql('w', 'halfvec', 5000, 41, 70),
		'DELETE FROM w WHERE id % 3 = 0',
		'VACUUM w',
		fill_sql('w', 'halfvec', 5000, 71, 80)));
my $q32 = '[' . join(',', map { ($_ % 9) / 4 - 1 } 1 .. 32) . ']';
my $q32b = '[' . join(',', map { 2 - ($_ % 5) / 2 } 1 .. 32) . ']';
my $q5000 = $node->safe_psql('postgres', 'SELECT v FROM w WHERE id = 7');
my %before = (
	h_l2 => knn('postgres', 'h', '<->', $q32, 0),
	h_ip => knn('postgres', 'h', '<#>', $q32, 0),
	w_l2 => knn('postgres', 'w', '<->', $q5000, 0));

my $logpos = -s $node->logfile;
$node->stop('immediate');
$node->start;
my $log = substr(slurp_file($node->logfile), $logpos);
like($log, qr/redo done at|redo is not required/, 'crash recovery ran');
unlike($log, qr/inconsistent page found/, 'wal_consistency_checking found no bad page');

for my $index ('h_l2', 'h_ip', 'w_l2')
{
	ivf_check_clean($node, 'postgres', $index, "$index after recovery: no problem");
}
is(knn('postgres', 'h', '<->', $q32, 1), $before{h_l2},
	'h_l2 after recovery: every row, in the sequential scan\'s order and distances');
is(knn('postgres', 'h', '<#>', $q32, 1), $before{h_ip},
	'h_ip after recovery: the same');
is(knn('postgres', 'w', '<->', $q5000, 1), $before{w_l2},
	'w_l2 (two-page groups) after recovery: the same');
is(knn('postgres', 'h', '<->', $q32, 0), $before{h_l2}, 'the table itself is unchanged');

# --------------------------------------------------- the GPU worker (CPU)
IvfTest::poll_until(
	sub { $node->safe_psql('postgres', 'SELECT state FROM ivf_gpu_stats') eq 'ready' }, 60);
is($node->safe_psql('postgres', q{SELECT ivf_gpu_load('h_l2')}), 't',
	'ivf_gpu_load uploads a halfvec index');
my $gpu_search = qq{SELECT string_agg(query || ':' || tid::text || ':' || distance::text, ' '
	ORDER BY query, rank) FROM ivf_search('h_l2', ARRAY['$q32'::vector, '$q32b'::vector], 20, 3)};
my $cpu = $node->safe_psql('postgres', "SET ivf.gpu = off; $gpu_search");
my $q0 = $node->safe_psql('postgres', 'SELECT queries FROM ivf_gpu_stats');
is($node->safe_psql('postgres', "SET ivf.gpu = on; $gpu_search"), $cpu,
	'the worker answers ivf_search on a halfvec index as the backend does');
cmp_ok($node->safe_psql('postgres', 'SELECT queries FROM ivf_gpu_stats'), '>', $q0,
	'through the worker');

# ------------------------------------------ Faiss export, recall, autotune
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM h WHERE v IS NOT NULL');
is($node->safe_psql('postgres', "SELECT ivf_export_faiss('h_l2', '$tmp/h.faiss')"),
	$live, 'ivf_export_faiss writes every vector of a halfvec index');
$node->safe_psql('postgres',
	"CREATE TABLE hf AS SELECT id, v::vector(32) AS v FROM h; "
	  . "CREATE INDEX hf_l2 ON hf USING ivfflat (v vector_l2_ops) WITH (centroids = '$tmp/h.faiss')");
my $lists = q{SELECT lists || ' ' || vectors || ' ' || largest_list || ' ' || empty_lists FROM ivf_index_info('%s')};
is($node->safe_psql('postgres', sprintf($lists, 'hf_l2')),
	$node->safe_psql('postgres', sprintf($lists, 'h_l2')),
	'a vector index around the exported centroids has the halfvec index\'s lists');
is( $node->safe_psql('postgres',
		"SET ivf.nprobe = 8; SELECT ivf_recall('h_l2', ARRAY['$q32'::vector, '$q32b'::vector], 10)"),
	'1', 'ivf_recall of a halfvec index at nprobe = lists is 1');
is( $node->safe_psql('postgres',
		q{SET client_min_messages = warning; SELECT count(*) > 0 FROM ivf_autotune('h_l2', 0.9, 5, 30)}),
	't', 'ivf_autotune measures a halfvec index');

# ------------------------------------------------- ivf_pgvector on halfvec
my $pgvector = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'vector'});
SKIP:
{
	skip 'pgvector is not installed in this PostgreSQL', 1 if $pgvector eq '';

	$node->safe_psql('postgres', 'CREATE DATABASE pgv');
	$node->safe_psql('pgv', 'CREATE EXTENSION ivf_pgvector CASCADE');
	$node->safe_psql(
		'pgv', join(";\n",
			'SELECT setseed(0.5)',
			'CREATE TABLE p (id int PRIMARY KEY, v halfvec(16))',
			fill_sql('p', 'halfvec', 16, 1, 2000),
			'CREATE INDEX p_hnsw ON p USING hnsw (v halfvec_l2_ops)',
			'CREATE INDEX p_l2 ON p USING ivf (v halfvec_l2_ops) WITH (lists = 6, prefilter = on)',
			'CREATE INDEX p_ip ON p USING ivf (v halfvec_ip_ops) WITH (lists = 6)',
			'CREATE INDEX p_cos ON p USING ivf (v halfvec_cosine_ops) WITH (lists = 6)'));
	is( $node->safe_psql('pgv',
			q{SELECT t.typname || '/' || e.extname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
			  JOIN pg_depend d ON d.objid = t.oid AND d.deptype = 'e'
			  JOIN pg_extension e ON e.oid = d.refobjid
			  WHERE a.attrelid = 'p'::regclass AND a.attname = 'v'}),
		'halfvec/vector', 'the column is pgvector\'s halfvec');
	for my $index ('p_l2', 'p_ip', 'p_cos')
	{
		ivf_check_clean($node, 'pgv', $index, "ivf_pgvector $index: no problem");
		is($node->safe_psql('pgv', "SELECT element_type FROM ivf_index_info('$index')"), 'halfvec',
			"ivf_pgvector $index: element type halfvec");
	}
	my $q16 = '[' . join(',', map { ($_ % 7) / 2 - 1.5 } 1 .. 16) . ']';
	my $idx_scan = sub {
		my ($op) = @_;
		return $node->safe_psql('pgv',
			"SET enable_seqscan = off; SET ivf.nprobe = 6; EXPLAIN (COSTS OFF) "
			  . "SELECT id FROM p ORDER BY v $op '$q16'::halfvec LIMIT 5");
	};
	like($idx_scan->('<->'), qr/Index Scan using p_(l2|hnsw)/, 'l2: an index scan');
	like($idx_scan->('<#>'), qr/Index Scan using p_ip/, 'ip: the ivf index');
	like($idx_scan->('<=>'), qr/Index Scan using p_cos/, 'cosine: the ivf index');

	# pgvector's HNSW beside: the ivf index gives the exact answer when
	# chosen (HNSW's is approximate); make the ivf index the only choice
	my $exact_l2 = knn('pgv', 'p', '<->', "$q16", 0);
	my $exact_ip = knn('pgv', 'p', '<#>', "$q16", 0);
	my $via = sub {
		my ($op) = @_;
		return $node->safe_psql('pgv',
			"BEGIN; DROP INDEX p_hnsw; SET LOCAL enable_seqscan = off; SET LOCAL ivf.nprobe = 6; "
			  . "SELECT string_agg(id || ':' || (v $op '$q16'), ' ') FROM "
			  . "(SELECT id, v FROM p ORDER BY v $op '$q16') s; ROLLBACK");
	};
	is($via->('<->'), $exact_l2, 'ivf_pgvector halfvec_l2_ops at nprobe = lists: the sequential scan\'s rows, order and distances');
	is($via->('<#>'), $exact_ip, 'ivf_pgvector halfvec_ip_ops at nprobe = lists: the same');
	is( $node->safe_psql('pgv',
			"SET enable_seqscan = off; SET hnsw.ef_search = 100; SELECT count(*) FROM "
			  . "(SELECT id FROM p ORDER BY v <-> '$q16' LIMIT 10) s"),
		'10', 'pgvector\'s HNSW halfvec index still answers beside it');
	is( $node->safe_psql('pgv',
			"SET ivf.nprobe = 6; SELECT string_agg(s.tid::text, ' ' ORDER BY s.rank) FROM "
			  . "ivf_search('p_l2', ARRAY['$q16'::vector], 10) s"),
		$node->safe_psql('pgv',
			"SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT string_agg(ctid::text, ' ') FROM "
			  . "(SELECT ctid FROM p ORDER BY v <-> '$q16', ctid LIMIT 10) s"),
		'ivf_search on a halfvec index (vector[] queries): the exact rows');
	# pgvector's halfvec[] as queries: the same rows and distances as the
	# same values as vector[] (they are exact in half), for the halfvec
	# index and for a vector index of the same rows
	$node->safe_psql('pgv',
		'CREATE TABLE pf AS SELECT id, v::vector(16) AS v FROM p; '
		  . 'CREATE INDEX pf_l2 ON pf USING ivf (v vector_l2_ops) WITH (lists = 6)');
	my $q16b = '[' . join(',', map { 1 - ($_ % 3) / 2 } 1 .. 16) . ']';
	my $search = q{SET ivf.nprobe = 6; SELECT string_agg(query || ':' || rank || ':' || tid::text
		|| ':' || distance::text, ' ' ORDER BY query, rank) FROM ivf_search('%s', ARRAY['%s'::%s, '%s'], 10)};
	for my $index ('p_l2', 'pf_l2')
	{
		my $as_half = $node->safe_psql('pgv', sprintf($search, $index, $q16, 'halfvec', $q16b));
		isnt($as_half, '', "ivf_search on $index with halfvec[] queries: rows");
		is($as_half, $node->safe_psql('pgv', sprintf($search, $index, $q16, 'vector', $q16b)),
			"ivf_search on $index: halfvec[] queries give the rows and distances of vector[]");
		is( $node->safe_psql('pgv',
				"SET ivf.nprobe = 6; SELECT ivf_recall('$index', ARRAY['$q16'::halfvec, '$q16b'], 10)"),
			'1', "ivf_recall on $index with halfvec[] queries at nprobe = lists: 1");
	}
	my ($rc, $out, $err) = $node->psql('pgv',
		q{SELECT * FROM ivf_search('p_l2', ARRAY['[1,2,3]'::halfvec], 1)});
	like($err, qr/different halfvec dimensions 16 and 3/,
		'a halfvec[] query of other dimensions: an error naming both');
	$node->safe_psql('pgv', 'DROP TABLE pf');
}

# ----------------------------------------------------- a streaming standby
$node->backup('halfvec_base');
my $standby = PostgreSQL::Test::Cluster->new('halfvec_standby');
$standby->init_from_backup($node, 'halfvec_base', has_streaming => 1);
$standby->start;

# what the standby must reproduce: [db, table, index, op, query, exact]
# (exact: the sequential scan's order too; cosine's index order, over unit
# vectors rounded to half, may differ from it at near ties)
my @replicated = (
	[ 'postgres', 'h', 'h_l2', '<->', $q32, 1 ],
	[ 'postgres', 'h', 'h_ip', '<#>', $q32b, 1 ],
	[ 'postgres', 'h', 'h_cos', '<=>', $q32, 0 ]);
$node->safe_psql(
	'postgres', join(";\n",
		'SELECT setseed(0.71)',
		'CREATE INDEX h_cos ON h USING ivfflat (v halfvec_cosine_ops) WITH (lists = 8)',
		fill_sql('h', 'halfvec', 32, 5001, 5600),
		'DELETE FROM h WHERE id % 7 = 0',
		'VACUUM h',
		fill_sql('h', 'halfvec', 32, 5601, 5900),
		'UPDATE h SET v = NULL WHERE id % 11 = 0'));
if ($pgvector ne '')
{
	# pgvector's HNSW index would take the l2 queries: the ivf one alone
	$node->safe_psql(
		'pgv', join(";\n",
			'SELECT setseed(0.72)',
			'DROP INDEX p_hnsw',
			fill_sql('p', 'halfvec', 16, 2001, 2400),
			'DELETE FROM p WHERE id % 6 = 0',
			'VACUUM p',
			fill_sql('p', 'halfvec', 16, 2401, 2600),
			'CREATE TABLE pv (id int PRIMARY KEY, v vector(16))',
			fill_sql('pv', 'vector', 16, 1, 1500),
			'CREATE INDEX pv_l2 ON pv USING ivf (v vector_l2_ops) WITH (lists = 5)',
			'CREATE INDEX pv_ip ON pv USING ivf (v vector_ip_ops) WITH (lists = 5, prefilter = off)',
			'CREATE INDEX pv_cos ON pv USING ivf (v vector_cosine_ops) WITH (lists = 5)',
			fill_sql('pv', 'vector', 16, 1501, 1800),
			'DELETE FROM pv WHERE id % 4 = 1',
			'VACUUM pv',
			fill_sql('pv', 'vector', 16, 1801, 1900)));
	my $q16 = '[' . join(',', map { ($_ % 7) / 2 - 1.5 } 1 .. 16) . ']';
	my $q16b = '[' . join(',', map { 1 - ($_ % 3) / 2 } 1 .. 16) . ']';
	push @replicated,
	  [ 'pgv', 'p', 'p_l2', '<->', $q16, 1 ],
	  [ 'pgv', 'p', 'p_ip', '<#>', $q16b, 1 ],
	  [ 'pgv', 'p', 'p_cos', '<=>', $q16, 0 ],
	  [ 'pgv', 'pv', 'pv_l2', '<->', $q16b, 1 ],
	  [ 'pgv', 'pv', 'pv_ip', '<#>', $q16, 1 ],
	  [ 'pgv', 'pv', 'pv_cos', '<=>', $q16b, 0 ];
}
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));

for my $r (@replicated)
{
	my ($db, $table, $index, $op, $q, $exact) = @$r;
	like(
		$standby->safe_psql($db,
			"SET enable_seqscan = off; SET ivf.nprobe = 1000; EXPLAIN (COSTS OFF) "
			  . "SELECT id FROM $table ORDER BY v $op '$q'"),
		qr/Index Scan using $index /,
		"standby $db $index: the query is an index scan of $index");
	ivf_check_clean($standby, $db, $index, "standby $db $index: ivf_check finds nothing");
	my $primary = knn($db, $table, $op, $q, 1);
	isnt($primary, '', "primary $db $index: rows");
	is(knn_on($standby, $db, $table, $op, $q, 1), $primary,
		"standby $db $index at nprobe = lists: the primary's rows, order and distances");
	is($primary, knn($db, $table, $op, $q, 0),
		"primary $db $index at nprobe = lists: the sequential scan's") if $exact;
}
my $standby_log = slurp_file($standby->logfile);
unlike($standby_log, qr/inconsistent page found/,
	'the standby\'s replay: wal_consistency_checking found no bad page');
$standby->stop;

$node->stop;
done_testing();
