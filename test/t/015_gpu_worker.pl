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

my $node = PostgreSQL::Test::Cluster->new('gpu_worker');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'ivf'
ivf.gpu_worker = on
ivf.gpu_backend = cpu
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

# terminated: the postmaster starts it again
my $old = $s->{pid};
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
ok( IvfTest::poll_until(
		sub { my $t = stats(); $t->{state} eq 'ready' && $t->{pid} != $old }, 30),
	'a terminated worker is started again');
is(stats()->{starts}, 2, 'a second start');
query_ok('after the restart');

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
});
my $log_offset = -s $node->logfile;
$node->restart;
ok( IvfTest::poll_until(sub { stats()->{state} eq 'ready' }, 30),
	'auto: ready');
is(stats()->{backend}, 'cpu', 'auto: on the CPU');
like(stats()->{detail}, qr{cannot load "/nonexistent/ivf_gpu\.so"}, 'auto: says why');
ok( $node->log_contains(qr/ivf gpu worker: no device, using the CPU/, $log_offset),
	'auto: LOG line');

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
