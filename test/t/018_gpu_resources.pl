# The GPU worker gives back what it holds for indexes and builds that are
# gone, instead of keeping it until memory pressure or the next build:
#
#   - REINDEX + ivf_gpu_load six times: only the live copy stays resident
#     (the upload of the new file frees the copy of the old one);
#   - DROP INDEX: its copy is freed by the worker's periodic check;
#   - four CREATE INDEX with ivf.gpu_build = on, each cancelled during
#     k-means, their backends staying connected and idle: the k-means
#     sessions they opened are released, so that four later builds still
#     run their k-means on the worker.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = IvfTest::gpu_worker_node('gpu_resources');
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION ivf;
CREATE TABLE r (id int, v vector(16));
INSERT INTO r SELECT i, (SELECT array_agg(((i * 31 + j * 17) % 101) / 9.0 + (i % 7) * 4)::real[]
	FROM generate_series(1, 16) j)::vector FROM generate_series(1, 20000) i;
CREATE INDEX r_idx ON r USING ivfflat (v) WITH (lists = 50);
});

sub stat_row
{
	my ($cols) = @_;
	return $node->safe_psql('postgres', "SELECT $cols FROM ivf_gpu_stats");
}

ok(IvfTest::poll_until(sub { stat_row('state') eq 'ready' }, 30), 'the worker comes up');

# 1. REINDEX + ivf_gpu_load: one copy, of the same size each time
is($node->safe_psql('postgres', "SELECT ivf_gpu_load('r_idx')"), 't', 'loaded');
my $one = stat_row('memory_used');
cmp_ok($one, '>', 20000 * 16 * 4, "one copy: $one bytes");
for my $i (1 .. 6)
{
	$node->safe_psql('postgres', 'REINDEX INDEX r_idx');
	is($node->safe_psql('postgres', "SELECT ivf_gpu_load('r_idx')"), 't', "reload $i");
}
is(stat_row('indexes_resident'), '1', 'after six REINDEX: one copy resident');
is(stat_row('memory_used'), $one, 'after six REINDEX: the memory of one copy');

# 2. DROP INDEX: the worker notices within about a second
$node->safe_psql('postgres', 'DROP INDEX r_idx');
ok( IvfTest::poll_until(sub { stat_row('indexes_resident || \'/\' || memory_used') eq '0/0' }, 30),
	'DROP INDEX: its copy is freed') or diag(stat_row('indexes_resident, memory_used'));

# copies of live indexes survive that check: a temporary index and one in
# another tablespace (their files are elsewhere), checked when another
# index's upload begins
my $ts = PostgreSQL::Test::Utils::tempdir;
$node->safe_psql('postgres', qq{
CREATE TABLESPACE ts LOCATION '$ts';
CREATE INDEX r_ts ON r USING ivfflat (v) WITH (lists = 20) TABLESPACE ts;
CREATE INDEX r_other ON r USING ivfflat (v) WITH (lists = 10);
});
is( $node->safe_psql('postgres', q{
CREATE TEMP TABLE rt AS SELECT * FROM r WHERE id <= 5000;
CREATE INDEX rt_idx ON rt USING ivfflat (v) WITH (lists = 10);
SELECT ivf_gpu_load('rt_idx'), ivf_gpu_load('r_ts');
SELECT ivf_gpu_load('r_other');
SELECT indexes_resident FROM ivf_gpu_stats;
}), "t|t\nt\n3", 'a temporary index and one in a tablespace stay resident');
$node->safe_psql('postgres', 'DROP INDEX r_ts, r_other; DROP TABLESPACE ts');
ok(IvfTest::poll_until(sub { stat_row('indexes_resident') eq '0' }, 30),
	'and go when dropped (the temporary one with its session)');

# 3. cancelled builds leave their k-means sessions behind; later builds
# must still get the worker (it has 4 sessions)
my @idle;
for my $i (1 .. 4)
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	my $rounds = stat_row('kmeans_rounds');
	$bg->query_until(
		qr/started/, q{
SET ivf.gpu_build = on;
SET ivf.kmeans_iterations = 100000;
SET ivf.kmeans_tolerance = 0;
\echo started
CREATE INDEX r_cancelled ON r USING ivfflat (v) WITH (lists = 100);
});
	ok(IvfTest::poll_until(sub { stat_row('kmeans_rounds') > $rounds }, 60),
		"build $i: k-means runs on the worker");
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$bg->query('SELECT 1');
	like($bg->{stderr}, qr/canceling statement due to user request/, "build $i: cancelled");
	$bg->{stderr} = '';
	is($bg->query_safe('SELECT 2'), '2', "build $i: its backend stays connected");
	push @idle, $bg;
}

my ($f0) = stat_row('fallbacks');
for my $i (1 .. 4)
{
	my $rounds = stat_row('kmeans_rounds');
	$node->safe_psql('postgres', qq{
SET ivf.gpu_build = on;
SET ivf.kmeans_iterations = 5;
SET ivf.kmeans_tolerance = 0;
CREATE INDEX r_later$i ON r USING ivfflat (v) WITH (lists = 30);
});
	is(stat_row('kmeans_rounds') - $rounds, 5,
		"later build $i: its 5 k-means rounds ran on the worker");
}
is(stat_row('fallbacks'), $f0, 'later builds: no fallback');
$_->quit for @idle;

$node->stop;
done_testing();
