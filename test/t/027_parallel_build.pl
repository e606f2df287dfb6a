# The build's assignment pass follows the planner's worker count
# (plan_create_index_workers), whatever the number of lists:
#
#  - with max_parallel_maintenance_workers = 2 and a small table at 20
#    lists, the pass runs in parallel workers (its DEBUG1 line);
#  - the parallel index is the serial one page for page (so every row is
#    in the same list, in the same place), for L2 and for cosine with
#    lists ordered by residual, and a scan of all lists is exact;
#  - the table's parallel_workers = 0 keeps the pass serial.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('parallel_build');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
maintenance_work_mem = 256MB
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_workers_per_gather = 0
});
$node->start;

my $rows = 5000;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION ivf;
CREATE EXTENSION pageinspect;
CREATE TABLE t (id int PRIMARY KEY, v vector(16));
INSERT INTO t SELECT i, (SELECT array_agg((sin(i * j * 0.37 + (i % 7)) + (i % 5) * 2)::real)
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, $rows) i;
ANALYZE t;
CREATE FUNCTION index_pages(idx regclass) RETURNS bytea[] LANGUAGE sql AS \$\$
  SELECT array_agg(substr(get_raw_page(idx::text, b::int), 13) ORDER BY b)
  FROM generate_series(0, pg_relation_size(idx) / current_setting('block_size')::int - 1) b \$\$;
});

# the table is far below min_parallel_table_scan_size: lower it, as a user
# would, so the planner gives the build workers
my $par = 'SET max_parallel_maintenance_workers = 2; SET min_parallel_table_scan_size = 0; '
  . 'SET client_min_messages = debug1; ';
my $ser = 'SET max_parallel_maintenance_workers = 0; SET client_min_messages = debug1; ';

sub build
{
	my ($settings, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $settings . $sql);
	is($rc, 0, "$sql succeeds") or diag($err);
	return $err;
}

my $err = build($ser, 'CREATE INDEX t_ser ON t USING ivfflat (v vector_l2_ops) WITH (lists = 20)');
unlike($err, qr/parallel workers/, 'serial build: no parallel assignment pass');

$err = build($par, 'CREATE INDEX t_par ON t USING ivfflat (v vector_l2_ops) WITH (lists = 20)');
like($err, qr/ivfflat index "t_par": assignment pass with [12] parallel workers/,
	'20 lists, max_parallel_maintenance_workers = 2: the assignment pass is parallel');
is($node->safe_psql('postgres', q{SELECT index_pages('t_ser') = index_pages('t_par')}),
	't', 'the parallel index equals the serial one page for page');
ivf_check_clean($node, 'postgres', 't_par');

# exact at nprobe = lists: all rows, and the true nearest neighbours
my $info = ivf_index_info($node, 'postgres', 't_par');
is($info->{lists}, 20, 't_par has 20 lists');
is($info->{vectors}, $rows, "t_par holds the table's $rows vectors");
is(index_scan_count($node, 'postgres', 't', 'v', '<->', '[' . join(',', (1) x 16) . ']', 20),
	$rows, 'a scan of all lists returns every row');
for my $q (17, 2500, 4999)
{
	my $qv = $node->safe_psql('postgres', "SELECT v FROM t WHERE id = $q");
	my $knn = "SELECT string_agg(id::text, ',' ORDER BY d, id) FROM "
	  . "(SELECT id, v <-> '$qv' AS d FROM t ORDER BY v <-> '$qv' LIMIT 10) s";
	my $exact = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; $knn");
	my $index = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = 20; $knn");
	is($index, $exact, "query $q: the parallel index at nprobe = lists gives the exact top 10");
}

# cosine, lists ordered by residual: the same again
build($ser, 'CREATE INDEX t_cos_ser ON t USING ivfflat (v vector_cosine_ops) '
	  . 'WITH (lists = 20, list_ordering = residual_norm_asc)');
$err = build($par, 'CREATE INDEX t_cos_par ON t USING ivfflat (v vector_cosine_ops) '
	  . 'WITH (lists = 20, list_ordering = residual_norm_asc)');
like($err, qr/"t_cos_par": assignment pass with [12] parallel workers/,
	'cosine, ordered lists: the assignment pass is parallel');
is($node->safe_psql('postgres', q{SELECT index_pages('t_cos_ser') = index_pages('t_cos_par')}),
	't', 'cosine, ordered lists: the parallel index equals the serial one page for page');

# a halfvec index (an expression; half floats in the list pages): the same
build($ser, 'CREATE INDEX t_h_ser ON t USING ivfflat ((v::halfvec(16)) halfvec_cosine_ops) '
	  . 'WITH (lists = 20)');
$err = build($par, 'CREATE INDEX t_h_par ON t USING ivfflat ((v::halfvec(16)) halfvec_cosine_ops) '
	  . 'WITH (lists = 20)');
like($err, qr/"t_h_par": assignment pass with [12] parallel workers/,
	'halfvec: the assignment pass is parallel');
is($node->safe_psql('postgres', q{SELECT index_pages('t_h_ser') = index_pages('t_h_par')}),
	't', 'halfvec: the parallel index equals the serial one page for page');
ivf_check_clean($node, 'postgres', 't_h_par');

# the table's parallel_workers = 0 keeps the build serial
$node->safe_psql('postgres', 'ALTER TABLE t SET (parallel_workers = 0)');
$err = build($par, 'CREATE INDEX t_zero ON t USING ivfflat (v vector_l2_ops) WITH (lists = 20)');
unlike($err, qr/parallel workers/, 'parallel_workers = 0: the assignment pass is serial');
is($node->safe_psql('postgres', q{SELECT index_pages('t_ser') = index_pages('t_zero')}),
	't', 'parallel_workers = 0: the same index');

$node->stop;
done_testing();
