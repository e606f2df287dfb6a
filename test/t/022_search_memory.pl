# ivf_search's memory follows work_mem: queries are processed in chunks
# whose working set fits in work_mem, and the rows go to a tuplestore that
# spills to disk.  With work_mem = 64kB, 2,000 queries x k = 500 (1,000,000
# rows; their top-k alone would take 2,000 x 500 x 12 bytes = 12 MB):
#
#  - the backend's peak resident size (VmHWM in /proc/<pid>/status, read as
#    the server's OS user) grows by less than a quarter of that, on the
#    matrix and the csr path;
#  - the server log shows a temporary file (log_temp_files = 0);
#  - both paths return the same rows (compared through sums, which take no
#    memory, rather than aggregating a million rows into one value).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = ivf_node('search_mem', q{
autovacuum = off
shared_buffers = 4MB
log_temp_files = 0
max_parallel_workers_per_gather = 0
});
$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v vector(8));
INSERT INTO t SELECT i, (SELECT array_agg(sin(i * j) * 10 + (i % 10) * 3)::real[]
                         FROM generate_series(1, 8) j)::vector
FROM generate_series(1, 20000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 10);
CREATE TABLE qs (n int PRIMARY KEY, q vector(8));
INSERT INTO qs SELECT n, (SELECT array_agg(cos(n * j) * 10 + (n % 10) * 3)::real[]
                          FROM generate_series(1, 8) j)::vector
FROM generate_series(1, 2000) n;
});

my ($nq, $k) = (2000, 500);
my $unbounded = $nq * $k * 12;

sub vmhwm
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or die "cannot read /proc/$pid/status: $!";
	while (<$fh>)
	{
		return $1 * 1024 if /^VmHWM:\s+(\d+)\s+kB/;
	}
	die "no VmHWM in /proc/$pid/status";
}

my %result;
for my $mode ('matrix', 'csr')
{
	my $s = $node->background_psql('postgres');
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_safe("SET ivf.nprobe = 3; SET ivf.search_mode = $mode; SET work_mem = '64kB'");

	# touch every page the search will (table, probed lists) before the
	# baseline: shared buffers count in the resident size too
	$s->query_safe(
		q{SELECT count(*) FROM t;
		  SELECT count(*) FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), 1)});
	my $before = vmhwm($pid);
	my $log_offset = -s $node->logfile;
	my $r = $s->query_safe(
		qq{SELECT count(*), sum(rank), sum(query::bigint * rank * ((tid::text::point)[0] * 1000 + (tid::text::point)[1])),
		          round(sum(distance)::numeric, 0)
		   FROM ivf_search('t_idx', (SELECT array_agg(q ORDER BY n) FROM qs), $k)});
	my $growth = vmhwm($pid) - $before;
	$s->quit;

	my ($count) = split /\|/, $r;
	is($count, $nq * $k, "($mode) $nq x $k rows");
	$result{$mode} = $r;
	note "($mode) peak resident size grew by $growth bytes; the top-k alone: $unbounded";
	cmp_ok($growth, '<', $unbounded / 4,
		"($mode) the backend's peak memory grew by less than a quarter of the results' size");
	ok($node->log_contains(qr/temporary file: path/, $log_offset),
		"($mode) the rows spilled to a temporary file");
}
is($result{csr}, $result{matrix}, 'matrix and csr return the same rows');

$node->stop;
done_testing();
