# The GPU worker's life cycle, without a GPU:
#
#   - ivf in shared_preload_libraries with ivf.gpu_worker = on and
#     ivf.gpu_backend = cpu starts a worker on the CPU implementation of the
#     GPU library's contract; ivf_gpu_stats shows it ready;
#   - pg_terminate_backend on it: the postmaster starts it again (a new pid,
#     one more start), and queries keep working meanwhile; kill -9: crash
#     recovery, and the worker is back;
#   - ivf.gpu_backend = auto with no device library installed at the path
#     given: a LOG line, then the CPU;
#   - ivf.gpu_backend = device with none: the worker serves nothing and
#     says why ("failed"), and the server and queries are unaffected;
#   - ivf.gpu_worker = off: no worker.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $log_offset;

my $node = IvfTest::gpu_worker_node('gpu_worker', qq{
ivf.gpu_memory_limit = 64MB
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');
$node->safe_psql('postgres', q{
CREATE TABLE t (id int, v vector(8));
INSERT INTO t SELECT i, array_fill((i % 17)::real, ARRAY[8])::vector FROM generate_series(1, 500) i;
CREATE INDEX ON t USING ivfflat (v) WITH (lists = 4);
});

sub stats
{
	my $row = $node->safe_psql('postgres',
		q{SELECT state, coalesce(worker_pid, 0), coalesce(backend, ''), starts,
		         memory_limit, coalesce(detail, '') FROM ivf_gpu_stats});
	my ($state, $pid, $backend, $starts, $limit, $detail) = split /\|/, $row, 6;
	return { state => $state, pid => $pid, backend => $backend,
		starts => $starts, limit => $limit, detail => $detail };
}

sub query_ok
{
	my ($what) = @_;
	is( $node->safe_psql('postgres',
			q{SET enable_seqscan = off; SET ivf.nprobe = 4;
			  SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> array_fill(3::real, ARRAY[8])::vector LIMIT 5) s}),
		'5', "$what: index scans still answer");
}

ok( IvfTest::poll_until(sub { stats()->{state} eq 'ready' }, 30),
	'the worker comes up');
my $s = stats();
is($s->{backend}, 'cpu', 'on the CPU implementation');
is($s->{limit}, 64 * 1024 * 1024, 'with the memory limit');
is($s->{starts}, 1, 'started once');
ok($s->{pid} > 0, 'with a pid');
is( $node->safe_psql('postgres',
		"SELECT backend_type FROM pg_stat_activity WHERE pid = $s->{pid}"),
	'ivf gpu worker', 'listed in pg_stat_activity');
query_ok('worker up');

# Batch search through the worker gives exactly the CPU's answer: every
# metric, max_codes cutting lists, both CPU paths, after inserts (found at
# once: the copy is refreshed) and after DELETE + VACUUM.
$node->safe_psql('postgres', q{
CREATE TABLE b (id int, v vector(16));
INSERT INTO b SELECT i, (SELECT array_agg(((i * 31 + j * 17) % 101) / 9.0 + (i % 7) * 4)::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 4000) i;
CREATE TABLE qs (id int, v vector(16));
INSERT INTO qs SELECT i, (SELECT array_agg(((i * 13 + j * 29) % 89) / 7.0 + (i % 5) * 4 + 0.37)::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 120) i;
CREATE INDEX b_l2 ON b USING ivfflat (v vector_l2_ops) WITH (lists = 20);
CREATE INDEX b_ip ON b USING ivfflat (v vector_ip_ops) WITH (lists = 20);
CREATE INDEX b_cos ON b USING ivfflat (v vector_cosine_ops) WITH (lists = 20);
CREATE FUNCTION run(idx text, gpu text, extra text DEFAULT '') RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	PERFORM set_config('ivf.gpu', gpu, true);
	IF extra <> '' THEN EXECUTE extra; END IF;
	SELECT string_agg(query || ':' || rank || ':' || tid::text || ':' || distance::text, ' '
	                  ORDER BY query, rank)
	INTO r
	FROM ivf_search(idx::regclass, (SELECT array_agg(v ORDER BY id) FROM qs), 10, 4);
	RETURN r;
END $$;
});

sub same
{
	my ($idx, $extra, $what) = @_;
	$extra //= '';
	my $e = $extra eq '' ? "''" : "\$\$$extra\$\$";
	my $cpu = $node->safe_psql('postgres', "SELECT run('$idx', 'off', $e)");
	my $gpu = $node->safe_psql('postgres', "SELECT run('$idx', 'on', $e)");
	ok($cpu ne '' && $cpu eq $gpu, "$what: same rows, order and distances");
}

sub gpu_counters
{
	my ($b, $q, $f, $r) = split /\|/, $node->safe_psql('postgres',
		'SELECT batches, queries, fallbacks, indexes_resident FROM ivf_gpu_stats');
	return ($b, $q, $f, $r);
}

same('b_l2', '', 'l2');
my ($batches, $queries, $fallbacks, $res) = gpu_counters();
ok($batches >= 1 && $queries >= 120, "the worker answered ($batches batches, $queries queries)");
is($fallbacks, 0, 'no fallback');
is($res, 1, 'one index resident');
same('b_ip', '', 'inner product');
same('b_cos', '', 'cosine');
same('b_l2', 'SET LOCAL ivf.max_codes = 150', 'max_codes cuts lists');
same('b_l2', 'SET LOCAL ivf.search_mode = csr', 'against the csr path');
same('b_l2', 'SET LOCAL ivf.search_mode = matrix', 'against the matrix path');
is($node->safe_psql('postgres', 'SELECT indexes_resident FROM ivf_gpu_stats'), '3',
	'three indexes resident');

# index scans with ivf.gpu = on: the first ivf.gpu_scan_k rows from the
# worker, the rest from the CPU's scan of the same round; the same rows in
# the same order as with ivf.gpu = off, within and past the worker's rows
$node->safe_psql('postgres', q{
CREATE FUNCTION scan_run(idx text, op text, gpu text, lim int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text := ''; q record; got text;
BEGIN
	PERFORM set_config('ivf.gpu', gpu, true);
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('ivf.nprobe', '4', true);
	PERFORM set_config('ivf.gpu_scan_k', '20', true);
	FOR q IN SELECT v FROM qs WHERE id % 6 = 0 ORDER BY id LOOP
		EXECUTE format('SELECT string_agg(ctid::text || '':'' || d::text, '','') FROM
			(SELECT ctid, v %s $1 AS d FROM b ORDER BY v %s $1 LIMIT %s) s', op, op, lim)
			INTO got USING q.v;
		r := r || got || ' ';
	END LOOP;
	RETURN r;
END $$;
});
my (undef, $sq0) = gpu_counters();
for my $case (['<->', 10], ['<->', 20], ['<->', 75], ['<#>', 10], ['<#>', 60], ['<=>', 30])
{
	my ($op, $lim) = @$case;
	my $cpu = $node->safe_psql('postgres', "SELECT scan_run('b', '$op', 'off', $lim)");
	my $gpu = $node->safe_psql('postgres', "SELECT scan_run('b', '$op', 'on', $lim)");
	ok($cpu =~ /\d/ && $cpu eq $gpu, "index scan $op LIMIT $lim: the same rows and order");
}
my (undef, $sq1) = gpu_counters();
is($sq1 - $sq0, 6 * 20, 'every scan asked the worker once');
like( $node->safe_psql('postgres', q{
		SET ivf.gpu = on; SET enable_seqscan = off;
		EXPLAIN (COSTS OFF) SELECT id FROM b ORDER BY v <-> (SELECT v FROM qs WHERE id = 1) LIMIT 5}),
	qr/Index Scan using b_l2/, 'the plan is an index scan');

# ivf.gpu_build: k-means' assignment steps and the assignment of every row
# on the worker give the same index, page for page (l2 and the spherical
# k-means of cosine)
$node->safe_psql('postgres', q{
CREATE EXTENSION pageinspect;
CREATE FUNCTION index_pages(idx regclass) RETURNS bytea[] LANGUAGE sql AS $$
  SELECT array_agg(substr(get_raw_page(idx::text, b::int), 13) ORDER BY b)
  FROM generate_series(0, pg_relation_size(idx) / current_setting('block_size')::int - 1) b $$;
});
for my $ops ('vector_l2_ops', 'vector_cosine_ops')
{
	my ($r0, $a0) = split /\|/, $node->safe_psql('postgres',
		'SELECT kmeans_rounds, assigned_points FROM ivf_gpu_stats');
	# a fixed number of rounds, so the count below is known
	$node->safe_psql('postgres', qq{
		SET ivf.kmeans_iterations = 10;
		SET ivf.kmeans_tolerance = 0;
		CREATE INDEX bk_cpu ON b USING ivfflat (v $ops) WITH (lists = 30);
		SET ivf.gpu_build = on;
		CREATE INDEX bk_gpu ON b USING ivfflat (v $ops) WITH (lists = 30);});
	my ($r1, $a1) = split /\|/, $node->safe_psql('postgres',
		'SELECT kmeans_rounds, assigned_points FROM ivf_gpu_stats');
	is($r1 - $r0, 10, "$ops: the 10 k-means rounds ran on the worker");
	is($a1 - $a0, $node->safe_psql('postgres', 'SELECT count(*) FROM b'),
		"$ops: so did the assignment of every row");
	is( $node->safe_psql('postgres',
			q{SELECT index_pages('bk_cpu') = index_pages('bk_gpu')}),
		't', "$ops: the same index as a CPU build");
	$node->safe_psql('postgres', 'DROP INDEX bk_cpu, bk_gpu');
}

# dynamic batching: concurrent backends' searches merged by the worker,
# each still answered exactly as the CPU answers it
$node->safe_psql('postgres', q{
CREATE FUNCTION check_same(idx text, lo int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a text; b text;
BEGIN
	PERFORM set_config('ivf.gpu', 'off', true);
	SELECT string_agg(query || ':' || rank || ':' || tid::text || ':' || distance::text, ' ' ORDER BY query, rank)
	INTO a FROM ivf_search(idx::regclass, (SELECT array_agg(v ORDER BY id) FROM qs WHERE id BETWEEN lo AND lo + 7), 10, 4);
	PERFORM set_config('ivf.gpu', 'on', true);
	SELECT string_agg(query || ':' || rank || ':' || tid::text || ':' || distance::text, ' ' ORDER BY query, rank)
	INTO b FROM ivf_search(idx::regclass, (SELECT array_agg(v ORDER BY id) FROM qs WHERE id BETWEEN lo AND lo + 7), 10, 4);
	IF a IS DISTINCT FROM b THEN
		RAISE EXCEPTION 'worker and CPU differ for queries % to %', lo, lo + 7;
	END IF;
END $$;
ALTER SYSTEM SET ivf.gpu_batch_window = 20000;
SELECT pg_reload_conf();
});
sleep 1;
my ($b0, $q0) = gpu_counters();
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $pgb = IvfTest::start_pgbench($node, $tmp, 'batching', '-c 8 -j 4 -t 15',
	{ same => [1, "\\set lo random(1, 110)\nSELECT check_same('b_l2', :lo);\n"] }, 120);
IvfTest::check_pgbench('8 clients through the worker', IvfTest::finish_pgbench($pgb));
my ($b1, $q1) = gpu_counters();
my $mean = ($b1 > $b0) ? ($q1 - $q0) / ($b1 - $b0) : 0;
is($q1 - $q0, 8 * 15 * 8, 'every query went through the worker');
cmp_ok($mean, '>', 8, "requests from several backends were merged (mean batch $mean queries)");

# single-query index scans from 8 clients, merged by the worker too
$node->safe_psql('postgres', q{
CREATE FUNCTION check_scan_same(lo int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a text; b text; q vector;
BEGIN
	SELECT v INTO q FROM qs WHERE id = lo;
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('ivf.nprobe', '4', true);
	PERFORM set_config('ivf.gpu', 'off', true);
	SELECT string_agg(ctid::text, ',') INTO a FROM (SELECT ctid FROM b ORDER BY v <-> q LIMIT 10) s;
	PERFORM set_config('ivf.gpu', 'on', true);
	SELECT string_agg(ctid::text, ',') INTO b FROM (SELECT ctid FROM b ORDER BY v <-> q LIMIT 10) s;
	IF a IS DISTINCT FROM b THEN
		RAISE EXCEPTION 'index scan through the worker differs for query %', lo;
	END IF;
END $$;
});
($b0, $q0) = gpu_counters();
$pgb = IvfTest::start_pgbench($node, $tmp, 'scans', '-c 8 -j 4 -t 25',
	{ scan => [1, "\\set lo random(1, 120)\nSELECT check_scan_same(:lo);\n"] }, 120);
IvfTest::check_pgbench('8 clients scanning through the worker', IvfTest::finish_pgbench($pgb));
($b1, $q1) = gpu_counters();
$mean = ($b1 > $b0) ? ($q1 - $q0) / ($b1 - $b0) : 0;
is($q1 - $q0, 8 * 25, 'every scan went through the worker');
cmp_ok($mean, '>', 1, "single-query scans were merged (mean batch $mean queries)");
$node->safe_psql('postgres', 'ALTER SYSTEM RESET ivf.gpu_batch_window; SELECT pg_reload_conf();');

# rows inserted after the upload, each equal to a query: found at once,
# first (distance 0); only the lists they went to are sent again
my $rl0 = $node->safe_psql('postgres', 'SELECT refreshed_lists FROM ivf_gpu_stats');
$node->safe_psql('postgres', q{INSERT INTO b SELECT 10000 + id, v FROM qs WHERE id = 1});
same('b_l2', '', 'after one insert');
my $rl1 = $node->safe_psql('postgres', 'SELECT refreshed_lists FROM ivf_gpu_stats');
is($rl1 - $rl0, 1, 'one insert: one list sent again');
$node->safe_psql('postgres', q{INSERT INTO b SELECT 10000 + id, v FROM qs WHERE id > 1});
same('b_l2', '', 'after inserts');
is( $node->safe_psql('postgres', q{
		SET ivf.gpu = on;
		SELECT count(*) FROM ivf_search('b_l2', (SELECT array_agg(v ORDER BY id) FROM qs), 1, 4) s
		JOIN b ON b.ctid = s.tid WHERE b.id = 10000 + s.query AND s.distance = 0}),
	'120', 'every inserted row is its query\'s nearest');
$node->safe_psql('postgres', 'DELETE FROM b WHERE id % 5 = 0; VACUUM b');
same('b_l2', '', 'after DELETE and VACUUM');
same('b_cos', '', 'cosine after VACUUM');
(undef, undef, $fallbacks) = gpu_counters();
is($fallbacks, 0, 'still no fallback');

# terminated: the postmaster starts it again
my $old = $s->{pid};
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
ok( IvfTest::poll_until(
		sub { my $t = stats(); $t->{state} eq 'ready' && $t->{pid} != $old }, 30),
	'a terminated worker is started again');
is(stats()->{starts}, 2, 'a second start');
query_ok('after the restart');
is($node->safe_psql('postgres', 'SELECT indexes_resident FROM ivf_gpu_stats'), '0',
	'a new worker holds no index');
is($node->safe_psql('postgres', "SELECT ivf_gpu_load('b_l2')"), 't', 'ivf_gpu_load');
is($node->safe_psql('postgres', 'SELECT indexes_resident FROM ivf_gpu_stats'), '1',
	'the index is resident before any search');
my $used = $node->safe_psql('postgres', 'SELECT memory_used FROM ivf_gpu_stats');
cmp_ok($used, '>', 3000 * 16 * 4, "and its vectors count in memory_used ($used bytes)");
same('b_l2', '', 'after the restart (the new worker loads the index again)');

# no worker: the CPU answers, with a fallback counted and logged
(undef, undef, $fallbacks) = gpu_counters();
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(worker_pid) FROM ivf_gpu_stats;
	SELECT pg_sleep(0.05);});
my $gpu_now = $node->safe_psql('postgres', "SELECT run('b_l2', 'on')");
is($gpu_now, $node->safe_psql('postgres', "SELECT run('b_l2', 'off')"),
	'worker gone: the CPU answers the same');
ok(IvfTest::poll_until(sub { stats()->{state} eq 'ready' }, 30), 'back again');
my (undef, undef, $f2) = gpu_counters();
is($f2, $fallbacks + 1, 'the fallback is counted');
ok($node->log_contains(qr/ivf gpu: answering on the CPU: the GPU worker is not ready/, $log_offset),
	'and logged with the reason');

# kill -9: the postmaster treats it as a crash (every backend restarts,
# shared memory is set up again) and the worker comes back
$old = stats()->{pid};
kill 'KILL', $old;
ok( IvfTest::poll_until(
		sub
		{
			my $t = eval { stats() };
			$t && $t->{state} eq 'ready' && $t->{pid} != $old;
		},
		60),
	'a killed worker comes back after crash recovery');
query_ok('after kill -9');

# auto without a device library: the CPU, and a LOG line saying why
$node->append_conf('postgresql.conf', qq{
ivf.gpu_backend = auto
ivf.gpu_library = '/nonexistent/ivf_gpu'
ivf.gpu_memory_limit = 2MB
});
$log_offset = -s $node->logfile;
$node->restart;
ok( IvfTest::poll_until(sub { stats()->{state} eq 'ready' }, 30),
	'auto: ready');
is(stats()->{backend}, 'cpu', 'auto: on the CPU');
like(stats()->{detail}, qr{cannot load "/nonexistent/ivf_gpu\.so"}, 'auto: says why');
ok( $node->log_contains(qr/ivf gpu worker: no device, using the CPU/, $log_offset),
	'auto: LOG line');

# a memory limit that holds one copy of these two indexes, not both: each
# search on the other evicts (least recently used), and answers stay exact
$node->safe_psql('postgres', q{
CREATE TABLE e (id int, v vector(16));
INSERT INTO e SELECT i, (SELECT array_agg(((i * 13 + j * 7) % 97) / 5.0 + (i % 11))::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 16000) i;
CREATE INDEX e_l2 ON e USING ivfflat (v vector_l2_ops) WITH (lists = 16);
CREATE INDEX e_ip ON e USING ivfflat (v vector_ip_ops) WITH (lists = 16);
CREATE FUNCTION erun(idx text, gpu text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
	PERFORM set_config('ivf.gpu', gpu, true);
	SELECT string_agg(query || ':' || tid::text || ':' || distance::text, ' ' ORDER BY query, rank)
	INTO r FROM ivf_search(idx::regclass, (SELECT array_agg(v ORDER BY id) FROM qs), 5, 3);
	RETURN r;
END $$;
});
my (undef, undef, $ef0) = gpu_counters();
for my $idx ('e_l2', 'e_ip', 'e_l2', 'e_ip')
{
	is( $node->safe_psql('postgres', "SELECT erun('$idx', 'on')"),
		$node->safe_psql('postgres', "SELECT erun('$idx', 'off')"),
		"memory limit: $idx through the worker");
	ok($node->safe_psql('postgres', 'SELECT indexes_resident FROM ivf_gpu_stats') <= 1,
		"memory limit: at most one copy resident after $idx");
}
my (undef, undef, $ef1) = gpu_counters();
is($ef1, $ef0, 'memory limit: evictions, no fallback');
ok($node->safe_psql('postgres', 'SELECT memory_used <= 2 * 1024 * 1024 FROM ivf_gpu_stats') eq 't',
	'memory limit: kept');

# device without one: nothing served, the reason published
$node->append_conf('postgresql.conf', "ivf.gpu_backend = device\n");
$node->restart;
ok(IvfTest::poll_until(sub { stats()->{state} eq 'failed' }, 30), 'device: failed');
like(stats()->{detail}, qr{cannot load}, 'device: says why');
query_ok('no usable device');

# off: no worker at all
$node->append_conf('postgresql.conf', "ivf.gpu_worker = off\n");
$node->restart;
is(stats()->{state}, 'off', 'off: no worker');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ivf gpu worker'"),
	'0', 'off: none running');

$node->stop;
done_testing();
