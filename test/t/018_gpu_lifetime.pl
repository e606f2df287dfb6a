# The GPU worker's client must never read memory it freed: a worker's error
# reply (why the backend falls back to the CPU) has to outlive the memory
# context of the upload that received it.
#
#   - a memory limit too small for the index's lists: the worker answers
#     the upload with "list N: list does not fit the memory limit", and the
#     backend logs exactly that, answers on the CPU, and does not crash;
#   - 8 concurrent non-superuser sessions each run their first ivf_search
#     on an index the worker does not hold (a REINDEX before every round):
#     their uploads supersede each other, and every session still gets its
#     rows from the CPU, with no backend killed by a signal.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = IvfTest::gpu_worker_node('gpu_lifetime', qq{
ivf.gpu_memory_limit = 1MB
restart_after_crash = on
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION ivf;
CREATE ROLE alice LOGIN;
SELECT setseed(0.18);
CREATE TABLE g (id int, v vector(16));
INSERT INTO g SELECT i, (SELECT array_agg(random())::real[] FROM generate_series(1, 16 + i * 0))::vector
	FROM generate_series(1, 20000) i;
CREATE INDEX g_idx ON g USING ivfflat (v) WITH (lists = 50);
GRANT SELECT ON g TO alice;
});

sub stats
{
	return $node->safe_psql('postgres', 'SELECT state, fallbacks FROM ivf_gpu_stats');
}

ok(IvfTest::poll_until(sub { stats() =~ /^ready\|/ }, 30), 'the worker comes up');

my $search = q{SELECT count(*) FROM ivf_search('g_idx', ARRAY(SELECT v FROM g LIMIT 3), 10)};

# 1. lists that do not fit: the worker's error text reaches the log intact
# (it was read from a context the upload had already freed)
my $log_offset = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('postgres', "SET ivf.gpu = on; $search",
	extra_params => [ '-U', 'alice' ]);
is($rc, 0, 'memory limit: the search succeeds') or diag($err);
is($out, '30', 'memory limit: on the CPU, every row');
ok( $node->log_contains(
		qr/ivf gpu: answering on the CPU: list \d+: list does not fit the memory limit\n/,
		$log_offset),
	'memory limit: the worker\'s reason is logged intact');
ok(!$node->log_contains(qr/terminated by signal/, $log_offset), 'memory limit: no crash');

# 2. the issue's reproduction: 8 sessions, their first search each, on an
# index the worker does not hold; the searches and uploads are held
# together by a batch window and an advisory lock, so that the uploads
# overlap and supersede each other
$node->append_conf('postgresql.conf', qq{
ivf.gpu_memory_limit = 0
ivf.gpu_batch_window = 200000
});
$node->restart;
ok(IvfTest::poll_until(sub { stats() =~ /^ready\|/ }, 30), 'restarted without a limit');

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $script = "$tmp/search.sql";
open(my $fh, '>', $script) or die "$script: $!";
print $fh qq{SET ivf.gpu = on;
SELECT 'locked' FROM (SELECT pg_advisory_lock_shared(18)) s;
SELECT 'unlocked' FROM (SELECT pg_advisory_unlock_shared(18)) s;
$search;
};
close $fh;

my $rounds = 6;
my $sessions = 8;
my $good = 0;
$log_offset = -s $node->logfile;
for my $round (1 .. $rounds)
{
	# a new relfilenode: no copy in the worker
	$node->safe_psql('postgres', 'REINDEX INDEX g_idx');
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(18)');
	my @runs;
	for my $s (1 .. $sessions)
	{
		my $o = "$tmp/r${round}_s$s.out";
		push @runs, { out => $o,
			h => IvfTest::start_psql_script($node, 'postgres', $script, $o, '-U', 'alice') };
	}
	IvfTest::poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted})
			  == $sessions;
		},
		60);
	$holder->query_safe('SELECT pg_advisory_unlock(18)');
	$holder->quit;
	for my $r (@runs)
	{
		my $code = IvfTest::finish_psql_script($r->{h});
		my $text = slurp_file($r->{out});
		if ($code == 0 && $text =~ /^30$/m)
		{
			$good++;
		}
		else
		{
			diag("round $round: psql exited $code: $text " . slurp_file("$r->{out}.err"));
		}
	}
	ok(IvfTest::poll_until(sub { eval { stats() } }, 60), "round $round: the server answers");
}
is($good, $rounds * $sessions, 'every session of every round got its 30 rows');
ok(!$node->log_contains(qr/terminated by signal/, $log_offset), 'no backend crashed');
my $superseded = () = slurp_file($node->logfile, $log_offset) =~ /upload superseded/g;
ok($superseded > 0, "the uploads overlapped ($superseded superseded)");

$node->stop;
done_testing();
