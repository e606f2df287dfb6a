# ivf_pgvector: the ivf access method on pgvector's own vector type.
#
# One cluster, ivf preloaded with its GPU worker on the CPU implementation:
#  - CREATE EXTENSION ivf_pgvector fails without pgvector: PostgreSQL's
#    "required extension" error in a database without it (no CASCADE), or
#    the missing control file where pgvector is not installed at all (the
#    rest is then skipped);
#  - it is trusted (a user with CREATE on the database creates it), and
#    works with pgvector in a schema of its own;
#  - database pgv: CREATE EXTENSION ivf_pgvector CASCADE, a table of
#    pgvector vectors with pgvector's HNSW index beside ivf indexes (l2, ip,
#    cosine): at nprobe = lists an ivf scan and ivf_search return what the
#    sequential scan does; EXPLAIN shows the ivf index; ivf.nprobe,
#    ivf.params, the params option and iterative scans act, pgvector's
#    ivfflat.probes does not; ivf_recall / ivf_check / ivf_index_info /
#    ivf_export_faiss / centroids = / ivf_autotune; privileges and
#    row-level security still bind ivf_search; inserts, deletes and VACUUM;
#    crash recovery and a streaming standby; the worker answers ivf_search;
#    pg_dump / pg_restore round-trips and the restored indexes answer the
#    same;
#  - database alone: standalone CREATE EXTENSION ivf beside it, with
#    pgvector's library loaded into the same session, served by the same
#    worker;
#  - with shared_preload_libraries = 'vector,ivf' the indexes still answer
#    exactly.
#
# Needs pgvector installed in the same PostgreSQL (test/run_all.sh's install
# step builds it from ../shared/vendor with test/lib/install-pgvector.sh).
use strict;
use warnings;

use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

# IvfTest::gpu_worker_node's settings, on a node that can stream to a
# standby
my $node = PostgreSQL::Test::Cluster->new('ivf_pgvector');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'ivf'
ivf.gpu_worker = on
ivf.gpu_backend = cpu
max_parallel_workers_per_gather = 0
});
$node->start;
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

my $pgvector = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'vector'});
$node->safe_psql('postgres', 'CREATE DATABASE novec');

if ($pgvector eq '')
{
	# without pgvector installed, even CASCADE cannot help
	my ($rc, $out, $err) =
	  $node->psql('novec', 'CREATE EXTENSION ivf_pgvector CASCADE');
	isnt($rc, 0, 'no pgvector installed: CREATE EXTENSION ivf_pgvector fails');
	like($err, qr/vector\.control|extension "vector" is not available/,
		'no pgvector installed: the error names pgvector\'s extension');
  SKIP:
	{
		skip 'pgvector is not installed in this PostgreSQL '
		  . '(test/lib/install-pgvector.sh builds it from ../shared/vendor)', 1;
	}
	$node->stop;
	done_testing();
	exit 0;
}
note "pgvector $pgvector";

# ------------------------------------------------- without pgvector's vector
{
	my ($rc, $out, $err) = $node->psql('novec', 'CREATE EXTENSION ivf_pgvector');
	isnt($rc, 0, 'no vector in the database: CREATE EXTENSION ivf_pgvector fails');
	like($err, qr/required extension "vector" is not installed/,
		'with PostgreSQL\'s required-extension error');
	is( $node->safe_psql('novec',
			q{SELECT count(*) FROM pg_am WHERE amname = 'ivf'}),
		'0', 'and creates nothing');
}

# trusted: a user with CREATE on a database where pgvector is installed
$node->safe_psql('postgres', 'CREATE DATABASE trust');
$node->safe_psql('trust', 'CREATE EXTENSION vector; CREATE ROLE carol; GRANT CREATE ON DATABASE trust TO carol');
$node->safe_psql('trust', 'SET ROLE carol; CREATE EXTENSION ivf_pgvector');
is( $node->safe_psql('trust',
		q{SELECT extversion FROM pg_extension WHERE extname = 'ivf_pgvector'}),
	'0.2.0', 'a user with CREATE on the database can create ivf_pgvector (trusted)');

# pgvector in a schema of its own (as hosted services install it), ivf_pgvector
# in public: the script finds pgvector's type through the required
# extension's schema
$node->safe_psql('postgres', 'CREATE DATABASE sch');
$node->safe_psql(
	'sch', q{
CREATE SCHEMA ext;
CREATE EXTENSION vector SCHEMA ext;
CREATE EXTENSION ivf_pgvector SCHEMA public;
CREATE TABLE s (id int, v ext.vector(3));
INSERT INTO s SELECT i, ARRAY[i % 7, i % 11, i % 13]::ext.vector(3) FROM generate_series(1, 300) i;
CREATE INDEX s_idx ON s USING ivf (v) WITH (lists = 4);
});
like(
	$node->safe_psql('sch',
		q{SET search_path = public, ext; SET enable_seqscan = off;
		  EXPLAIN (COSTS OFF) SELECT id FROM s ORDER BY v <-> '[1,2,3]' LIMIT 3}),
	qr/Index Scan using s_idx\b/, 'pgvector in another schema: the ivf index plans');
is( $node->safe_psql('sch',
		q{SET search_path = public, ext; SELECT count(*) FROM ivf_search('s_idx', ARRAY['[1,2,3]'::vector], 3, 4)}),
	'3', 'and ivf_search answers');
# dropping the extension takes its indexes, and leaves pgvector and the data
$node->safe_psql('sch', 'DROP EXTENSION ivf_pgvector CASCADE');
is( $node->safe_psql('sch',
		q{SELECT (SELECT count(*) FROM pg_class WHERE relname = 's_idx') || ':'
		  || (SELECT count(*) FROM pg_extension WHERE extname = 'vector') || ':'
		  || (SELECT count(*) FROM s)}),
	'0:1:300', 'DROP EXTENSION ivf_pgvector CASCADE drops its indexes, not pgvector or the table');

# ------------------------------------------------------- the pgvector database
$node->safe_psql('postgres', 'CREATE DATABASE pgv');
$node->safe_psql('pgv', 'CREATE EXTENSION ivf_pgvector CASCADE');
is( $node->safe_psql('pgv',
		q{SELECT e.extname || ':' || r.extname FROM pg_depend d
		  JOIN pg_extension e ON e.oid = d.objid
		  JOIN pg_extension r ON r.oid = d.refobjid
		  WHERE d.classid = 'pg_extension'::regclass AND e.extname = 'ivf_pgvector'}),
	'ivf_pgvector:vector', 'ivf_pgvector depends on pgvector\'s extension');
is( $node->safe_psql('pgv',
		q{SELECT e.extname FROM pg_type t JOIN pg_depend d ON d.objid = t.oid
		  JOIN pg_extension e ON e.oid = d.refobjid
		  WHERE t.typname = 'vector' AND d.deptype = 'e'}),
	'vector', 'the vector type is pgvector\'s');

# 8 dimensions, values spread in both signs (cosine and inner product see
# different neighbours than l2); deterministic
my $rows = q{SELECT i, (SELECT array_agg(((i * j) % 7 - 3) + sin(i * 0.37 + j * 1.3))::real[]
	FROM generate_series(1, 8) j)::vector(8) FROM generate_series(%d, %d) i};
$node->safe_psql(
	'pgv', sprintf(q{
CREATE TABLE items (id int PRIMARY KEY, embedding vector(8));
INSERT INTO items %s;
CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops);
CREATE INDEX items_l2 ON items USING ivf (embedding vector_l2_ops) WITH (lists = 16);
CREATE INDEX items_ip ON items USING ivf (embedding vector_ip_ops) WITH (lists = 16);
CREATE INDEX items_cos ON items USING ivf (embedding vector_cosine_ops) WITH (lists = 16);
ANALYZE items;
}, sprintf($rows, 1, 3000)));

my @queries = map {
	my $q = $_;
	'[' . join(',', map { sprintf('%.6f', (($q * $_) % 5 - 2) + cos($q + $_)) } 1 .. 8) . ']'
} 1 .. 5;
my %index = ('<->' => 'items_l2', '<#>' => 'items_ip', '<=>' => 'items_cos');

# the l2 scan has pgvector's HNSW index to choose from too: drop it for the
# statement, in a transaction rolled back
sub in_ivf
{
	my ($op, $settings, $sql) = @_;
	my $drop = $op eq '<->' ? 'DROP INDEX items_hnsw;' : '';
	return "BEGIN; $drop SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
	  . " $settings $sql ROLLBACK;";
}

sub knn_sql
{
	my ($op, $q, $where) = @_;
	$where //= '';
	return "SELECT id FROM items $where ORDER BY embedding $op '$q' LIMIT 10;";
}

sub seq_ids
{
	my ($db, $op, $q, $where) = @_;
	return $node->safe_psql($db,
		'SET enable_indexscan = off; SET enable_bitmapscan = off; '
		  . knn_sql($op, $q, $where));
}

# ivf_search's rows for a query, as ids in rank order
sub ivf_search_ids
{
	my ($op, $q) = @_;
	return qq{SELECT t.id FROM ivf_search('$index{$op}', ARRAY['$q']::vector[], 10, 16) s
		JOIN items t ON t.ctid = s.tid ORDER BY s.rank};
}

# every metric and query: at nprobe = lists the index scan, the plan and
# ivf_search agree with the sequential scan
sub check_exact
{
	my ($db, $what) = @_;
	for my $op (sort keys %index)
	{
		my $idx = $index{$op};
		my $plan = $node->safe_psql($db,
			in_ivf($op, 'SET LOCAL ivf.nprobe = 16;',
				'EXPLAIN (COSTS OFF) ' . knn_sql($op, $queries[0])));
		like($plan, qr/Index Scan using $idx\b/, "$what: EXPLAIN shows $idx");
		my $ok = 1;
		my $search_ok = 1;
		for my $q (@queries)
		{
			my $seq = seq_ids($db, $op, $q);
			my $got = $node->safe_psql($db,
				in_ivf($op, 'SET LOCAL ivf.nprobe = 16;', knn_sql($op, $q)));
			my $batch = $node->safe_psql($db, ivf_search_ids($op, $q));
			$ok &&= ($seq ne '' && $got eq $seq);
			$search_ok &&= ($batch eq $seq);
			diag("$idx $q: seq\n$seq\nindex\n$got") if $got ne $seq;
		}
		ok($ok, "$what: $idx at nprobe = lists returns the sequential scan's rows");
		ok($search_ok, "$what: ivf_search on $idx returns them too");
		IvfTest::ivf_check_clean($node, $db, $idx, "$what: ivf_check('$idx') is clean");
	}
}

check_exact('pgv', 'built');

# pgvector's own HNSW index beside them
like(
	$node->safe_psql('pgv',
		'BEGIN; DROP INDEX items_l2; SET LOCAL enable_seqscan = off; EXPLAIN (COSTS OFF) '
		  . knn_sql('<->', $queries[0]) . ' ROLLBACK;'),
	qr/Index Scan using items_hnsw\b/, 'pgvector\'s HNSW index still plans');
is( $node->safe_psql('pgv',
		'BEGIN; DROP INDEX items_l2; SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = 200; SELECT count(*) FROM ('
		  . knn_sql('<->', $queries[0]) =~ s/;$//r . ') s; ROLLBACK;'),
	'10', 'and answers');

# ---------------------------------------------------------------- settings
my $all = q{SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <=> '%s') s;};
my $count = sprintf($all, $queries[1]);
my $default_count = $node->safe_psql('pgv', in_ivf('<=>', '', $count));
my $one = $node->safe_psql('pgv', in_ivf('<=>', 'SET LOCAL ivf.nprobe = 1;', $count));
cmp_ok($default_count, '<', 3000, "default nprobe probes some lists ($default_count rows)");
cmp_ok($one, '<', $default_count, "ivf.nprobe = 1 probes fewer ($one rows)");
is($node->safe_psql('pgv', in_ivf('<=>', q{SET LOCAL ivf.params = 'nprobe=1';}, $count)),
	$one, 'ivf.params nprobe=1 does the same');
is($node->safe_psql('pgv', in_ivf('<=>', 'SET LOCAL ivfflat.probes = 16;', $count)),
	$default_count, 'pgvector\'s ivfflat.probes does not tune an ivf index');
is($node->safe_psql('pgv', q{SELECT ivf_set_params('items_cos', 'nprobe=16')}),
	'nprobe=16', 'ivf_set_params stores the params option');
is($node->safe_psql('pgv', in_ivf('<=>', '', $count)), '3000',
	'the params option applies');
$node->safe_psql('pgv', q{SELECT ivf_set_params('items_cos', '')});

# a filter that keeps one row in 40: a single probed list holds too few
my $filtered = sprintf(
	q{SELECT count(*) FROM (SELECT id FROM items WHERE id %% 40 = 7
	  ORDER BY embedding <=> '%s' LIMIT 10) s;}, $queries[2]);
cmp_ok($node->safe_psql('pgv', in_ivf('<=>', 'SET LOCAL ivf.nprobe = 1;', $filtered)),
	'<', 10, 'a filtered scan of one list finds fewer than 10 rows');
is( $node->safe_psql('pgv',
		in_ivf('<=>',
			'SET LOCAL ivf.nprobe = 1; SET LOCAL ivf.iterative_scan = relaxed_order;', $filtered)),
	'10', 'ivf.iterative_scan = relaxed_order finds 10');
is( $node->safe_psql('pgv',
		in_ivf('<=>',
			'SET LOCAL ivf.nprobe = 1; SET LOCAL ivf.iterative_scan = strict_order;', $filtered)),
	'10', 'ivf.iterative_scan = strict_order finds 10');

# ------------------------------------------------------- the SQL functions
my $qarr = 'ARRAY[' . join(',', map { "'$_'" } @queries) . ']::vector[]';
is($node->safe_psql('pgv', "SET ivf.nprobe = 16; SELECT ivf_recall('items_l2', $qarr, 10)"),
	'1', 'ivf_recall at nprobe = lists is 1');
is( $node->safe_psql('pgv',
		q{SELECT string_agg(metric || ':' || dims || ':' || lists || ':' || vectors, ' ' ORDER BY metric)
		  FROM (SELECT (ivf_index_info(i)).* FROM unnest(ARRAY['items_l2', 'items_ip', 'items_cos']::regclass[]) i) s}),
	'cosine:8:16:3000 inner_product:8:16:3000 l2:8:16:3000',
	'ivf_index_info: metric, dimensions, lists, vectors');
is($node->safe_psql('pgv', "SELECT ivf_export_faiss('items_l2', '$tmp/items.faiss')"),
	'3000', 'ivf_export_faiss writes every vector');
ok(-s "$tmp/items.faiss", 'the Faiss file is there');
is($node->safe_psql('pgv', q{SELECT ivf_faiss_tid(ivf_faiss_id('(3,4)'))}), '(3,4)',
	'ivf_faiss_id and ivf_faiss_tid');
# an index around the exported file's centroids (the centroids option)
$node->safe_psql('pgv',
	"CREATE INDEX items_l2_faiss ON items USING ivf (embedding) WITH (centroids = '$tmp/items.faiss')");
is( $node->safe_psql('pgv',
		q{SELECT metric || ':' || lists || ':' || vectors FROM ivf_index_info('items_l2_faiss')}),
	'l2:16:3000', 'centroids = a Faiss file builds an ivf index around them');
$node->safe_psql('pgv', 'DROP INDEX items_l2_faiss');
cmp_ok(
	$node->safe_psql('pgv',
		q{SELECT count(*) FROM ivf_autotune('items_cos', 0.9, 10, 40)}),
	'>=', 1, 'ivf_autotune reports operating points');
{
	my ($rc, $out, $err) = $node->psql('pgv',
		q{SELECT * FROM ivf_search('items_hnsw', ARRAY['[0,0,0,0,0,0,0,0]']::vector[], 1)});
	isnt($rc, 0, 'ivf_search refuses pgvector\'s HNSW index');
	like($err, qr/"items_hnsw" is not an ivf index/, 'naming it');
	like($err, qr/Its access method is hnsw\./, 'and its access method');
}
{
	# messages name the index's access method, ivf: "ivfflat index"
	# would be pgvector's
	my ($rc, $out, $err) = $node->psql('pgv',
		q{CREATE TEMP TABLE none_yet (v vector(3));
		  CREATE INDEX none_yet_idx ON none_yet USING ivf (v) WITH (lists = 2)});
	is($rc, 0, 'an ivf index on an empty table');
	like($err, qr/NOTICE:  ivf index "none_yet_idx" was created with no data/,
		'its notice says "ivf index"');
	($rc, $out, $err) = $node->psql('pgv',
		q{CREATE TEMP TABLE no_dims (v halfvec);
		  CREATE INDEX ON no_dims USING ivf (v halfvec_l2_ops)});
	like($err, qr/column does not have dimensions/, 'a halfvec column without dimensions');
	like($err, qr/HINT:  Index a halfvec\(n\) column, or an expression such as \(embedding::halfvec\(768\)\)/,
		'the hint names halfvec');
}
{
	my ($rc, $out, $err) = $node->psql('pgv',
		q{SELECT * FROM ivf_search('items_l2', ARRAY['[1,2,3]']::vector[], 1)});
	isnt($rc, 0, 'a query of other dimensions is an error');
}

# -------------------------------------------- privileges, row-level security
$node->safe_psql(
	'pgv', q{
CREATE ROLE bob;
CREATE TABLE sec (id int, owner name, v vector(3));
INSERT INTO sec SELECT i, CASE WHEN i <= 10 THEN 'bob' ELSE 'alice' END,
	ARRAY[i, (i * 7) % 11, (i * 3) % 5]::vector(3) FROM generate_series(1, 20) i;
CREATE INDEX sec_idx ON sec USING ivf (v) WITH (lists = 1);
CREATE POLICY own ON sec USING (owner = current_user);
ALTER TABLE sec ENABLE ROW LEVEL SECURITY;
});
# both signatures of ivf_search (vector[] and pgvector's halfvec[] queries)
# and of ivf_recall bind alike
for my $type ('vector', 'halfvec')
{
	my $sec_search =
	  qq{SET ROLE bob; SELECT count(*) FROM ivf_search('sec_idx', ARRAY['[1,1,1]'::$type], 20)};
	my $sec_recall = qq{SET ROLE bob; SELECT ivf_recall('sec_idx', ARRAY['[1,1,1]'::$type], 5)};
	my ($rc, $out, $err) = $node->psql('pgv', $sec_search);
	like($err, qr/permission denied for table sec/,
		"ivf_search ($type\[\]) needs SELECT on the table");
	($rc, $out, $err) = $node->psql('pgv', $sec_recall);
	like($err, qr/permission denied for table sec/, "ivf_recall ($type\[\]) too");
	$node->safe_psql('pgv', 'GRANT SELECT ON sec TO bob');
	($rc, $out, $err) = $node->psql('pgv', $sec_search);
	like($err, qr/ivf_search cannot apply the row-level security policies of table "sec"/,
		"and ivf_search ($type\[\]) refuses a table whose policies hide rows from the caller");
	($rc, $out, $err) = $node->psql('pgv', $sec_recall);
	like($err, qr/ivf_recall cannot apply the row-level security policies of table "sec"/,
		"ivf_recall ($type\[\]) too");
	$node->safe_psql('pgv', 'ALTER TABLE sec DISABLE ROW LEVEL SECURITY');
	is($node->safe_psql('pgv', $sec_search), '20', "without them ivf_search ($type\[\]) answers");
	is($node->safe_psql('pgv', $sec_recall), '1', "and ivf_recall ($type\[\])");
	$node->safe_psql('pgv',
		'REVOKE SELECT ON sec FROM bob; ALTER TABLE sec ENABLE ROW LEVEL SECURITY');
}

# ------------------------------------------------- inserts, deletes, VACUUM
$node->safe_psql('pgv', sprintf('INSERT INTO items %s', sprintf($rows, 3001, 3600)));
$node->safe_psql('pgv', 'DELETE FROM items WHERE id % 10 = 3');
$node->safe_psql('pgv', 'VACUUM items');
my $live = $node->safe_psql('pgv', 'SELECT count(*) FROM items');
is(IvfTest::ivf_index_info($node, 'pgv', 'items_ip')->{vectors}, $live,
	"after inserts, deletes and VACUUM the index holds the $live live rows");
check_exact('pgv', 'after VACUUM');

# ---------------------------------------------- crash recovery, a standby
$node->safe_psql('pgv', 'CHECKPOINT');
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('ivf_pgvector_standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
# inserts only in WAL when the primary crashes (no checkpoint after them)
$node->safe_psql('pgv', sprintf('INSERT INTO items %s', sprintf($rows, 3601, 3800)));
$node->stop('immediate');
$node->start;
$live = $node->safe_psql('pgv', 'SELECT count(*) FROM items');
is(IvfTest::ivf_index_info($node, 'pgv', 'items_cos')->{vectors}, $live,
	"after a crash the index holds the $live rows, replayed from WAL");
check_exact('pgv', 'after crash recovery');
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
{
	my $same = 1;
	for my $op (sort keys %index)
	{
		for my $q (@queries[ 0 .. 1 ])
		{
			# every list: VACUUM may have split the originals' 16 lists
			my $sql = in_ivf($op, 'SET LOCAL ivf.nprobe = 32768;', knn_sql($op, $q));
			my $seq = seq_ids('pgv', $op, $q);
			my $b = $standby->safe_psql('pgv',
				$op eq '<->' ? ivf_search_ids($op, $q) : $sql);
			$same &&= ($seq ne '' && $b eq $seq);
		}
	}
	ok($same, 'the standby\'s ivf indexes return the sequential scan\'s rows');
	IvfTest::ivf_check_clean($standby, 'pgv', 'items_l2', 'ivf_check on the standby is clean');
}
$standby->stop;

# --------------------------------------------------- the GPU worker (CPU)
IvfTest::poll_until(
	sub { $node->safe_psql('pgv', 'SELECT state FROM ivf_gpu_stats') eq 'ready' }, 60);
is($node->safe_psql('pgv', 'SELECT state FROM ivf_gpu_stats'), 'ready', 'the worker is ready');
my $gpu_search = qq{SELECT string_agg(query || ':' || tid::text || ':' || distance::text, ' '
	ORDER BY query, rank) FROM ivf_search('items_cos', $qarr, 10, 4)};
is($node->safe_psql('pgv', q{SELECT ivf_gpu_load('items_cos')}), 't',
	'ivf_gpu_load uploads an ivf_pgvector index');
my $cpu = $node->safe_psql('pgv', "SET ivf.gpu = off; $gpu_search");
my $q0 = $node->safe_psql('pgv', 'SELECT queries FROM ivf_gpu_stats');
is($node->safe_psql('pgv', "SET ivf.gpu = on; $gpu_search"), $cpu,
	'the worker answers ivf_search on an ivf_pgvector index as the backend does');
cmp_ok($node->safe_psql('pgv', 'SELECT queries FROM ivf_gpu_stats'), '>', $q0,
	'through the worker');

# ------------------------------------------------------ pg_dump / pg_restore
my $dump = "$tmp/pgv.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'pgv', '-f', $dump ], 'pg_dump -Fc of pgv');
$node->safe_psql('postgres', 'CREATE DATABASE pgv_restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'pgv_restored', $dump ],
	'pg_restore into a new database');
is( $node->safe_psql('pgv_restored',
		q{SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'}),
	'ivf_pgvector,vector', 'both extensions restored');
is( $node->safe_psql('pgv_restored',
		q{SELECT string_agg(c.relname || ':' || a.amname, ',' ORDER BY c.relname)
		  FROM pg_class c JOIN pg_am a ON a.oid = c.relam
		  WHERE c.relname LIKE 'items\_%' AND c.relkind = 'i' AND c.relname <> 'items_pkey'}),
	'items_cos:ivf,items_hnsw:hnsw,items_ip:ivf,items_l2:ivf', 'the indexes restored');
check_exact('pgv_restored', 'restored');
# the restore builds the indexes anew (other k-means samples, so other
# lists): the same rows at nprobe = lists, the same options and contents
{
	my $same = 1;
	for my $op (sort keys %index)
	{
		for my $q (@queries[ 0 .. 1 ])
		{
			# every list: VACUUM may have split the originals' 16 lists
			my $sql = in_ivf($op, 'SET LOCAL ivf.nprobe = 32768;', knn_sql($op, $q));
			my $a = $node->safe_psql('pgv', $sql);
			my $b = $node->safe_psql('pgv_restored', $sql);
			$same &&= ($a ne '' && $a eq $b);
		}
	}
	ok($same, 'the restored indexes answer as the originals');
	my $info = q{SELECT string_agg(c.relname || ':' || array_to_string(c.reloptions, ';') || ':'
		|| i.metric || ':' || i.dims || ':' || i.lists_requested || ':' || i.vectors, ' ' ORDER BY c.relname)
		FROM pg_class c, ivf_index_info(c.oid) i WHERE c.relname IN ('items_l2', 'items_ip', 'items_cos')};
	is($node->safe_psql('pgv_restored', $info), $node->safe_psql('pgv', $info),
		'with the same options, metric, dimensions, lists requested and vectors (the originals may have split theirs)');
}

# ------------------------------------------ standalone ivf in the same cluster
$node->safe_psql('postgres', 'CREATE DATABASE alone');
$node->safe_psql(
	'alone', q{
CREATE EXTENSION ivf;
CREATE TABLE t (id int PRIMARY KEY, v vector(4));
INSERT INTO t SELECT i, ARRAY[sin(i), cos(i), sin(i * 3), (i % 5)]::vector(4) FROM generate_series(1, 1000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 8);
});
is( $node->safe_psql('alone',
		q{SELECT extversion FROM pg_extension WHERE extname = 'ivf'}) ne '',
	1, 'standalone CREATE EXTENSION ivf works in a second database');
my $alone_q = q{SET enable_seqscan = off; SET ivf.nprobe = 8;
	SELECT id FROM t ORDER BY v <-> '[0.5,0.5,0.5,2]' LIMIT 5;};
my $alone_seq = $node->safe_psql('alone',
	q{SET enable_indexscan = off; SELECT id FROM t ORDER BY v <-> '[0.5,0.5,0.5,2]' LIMIT 5;});
is($node->safe_psql('alone', $alone_q), $alone_seq, 'its ivfflat index answers exactly');
is($node->safe_psql('alone', "LOAD 'vector'; $alone_q"), $alone_seq,
	'with pgvector\'s library loaded into the same session too');
my $aq0 = $node->safe_psql('alone', 'SELECT queries FROM ivf_gpu_stats');
is( $node->safe_psql('alone',
		q{SET ivf.gpu = on; SELECT count(*) FROM ivf_search('t_idx', ARRAY['[0.5,0.5,0.5,2]'::vector], 5, 8)}),
	'5', 'ivf_search through the worker in the standalone database');
cmp_ok($node->safe_psql('alone', 'SELECT queries FROM ivf_gpu_stats'), '>', $aq0,
	'the same worker serves both databases');

# pgvector's library preloaded first: ivf.so's support functions must stay
# ivf.so's (the metric is told by their addresses) though vector.so
# defines C functions of the same names
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'vector,ivf'\n");
$node->restart;
is($node->safe_psql('pgv', 'SHOW shared_preload_libraries'), 'vector,ivf',
	'vector and ivf preloaded');
check_exact('pgv', "preload 'vector,ivf'");

$node->stop;
done_testing();
