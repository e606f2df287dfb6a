# The search settings' precedence holds whatever the settings' sources.
#
# ivf.nprobe (or another ivf.* knob) > ivf.params > pgvector's ivfflat.*
# name > the index's params > its defaults, from the values alone.  Here
# the settings come from postgresql.conf, ALTER DATABASE / ALTER ROLE,
# connection options and SET, with the library preloaded (defined in the
# postmaster, before any of them) or loaded at first use (after them), and
# the scan runs in the backend or in a parallel worker (which restores the
# leader's settings in its own order).  Every case must use the knob's
# value.  test/sql/ivfflat_knobs.sql covers SET before and after LOAD.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('precedence');
$node->init;
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ivf;
CREATE TABLE t (id int PRIMARY KEY, v vector(3));
INSERT INTO t
SELECT i, ARRAY[(i % 4) * 10 + sin(i)::real, (i % 3) * 10 + cos(i)::real, sin(i * 7)::real]::vector(3)
FROM generate_series(1, 2000) i;
CREATE INDEX t_idx ON t USING ivfflat (v) WITH (lists = 12);
ANALYZE t;
CREATE ROLE knob_user LOGIN;
GRANT SELECT ON t TO knob_user;
});

my $scan = q{SET enable_seqscan = off;};
my $count =
  q{SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> '[12.5,9.5,0.1]') s;};
# the same scan forced into a parallel worker; returns the rows the
# worker's index scan returned and the workers launched
my $force =
  $node->safe_psql('postgres', 'SHOW server_version_num') >= 160000
  ? 'debug_parallel_query'
  : 'force_parallel_mode';
my $parallel = qq{SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET $force = on;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM t ORDER BY v <-> '[12.5,9.5,0.1]';};

my $one = $node->safe_psql('postgres', "$scan SET ivf.nprobe = 1; $count");
my $all = $node->safe_psql('postgres', "$scan SET ivf.nprobe = 12; $count");
cmp_ok($one, '<', $all, 'one list has fewer rows than all');

# what the worker's scan returned, checking that a worker ran it
sub worker_rows
{
	my ($db, $opts, $sql) = @_;
	my ($stdout, $stderr);
	$node->psql(
		$db, "$scan $sql $parallel",
		stdout => \$stdout,
		stderr => \$stderr,
		extra_params => $opts);
	like($stdout, qr/Workers Launched: 1/, 'a worker ran the scan')
	  or diag($stderr);
	return $stdout =~ /Index Scan using t_idx on t \(actual rows=(\d+)/ ? $1 : -1;
}

for my $preload ('', 'ivf')
{
	my $name = $preload eq '' ? 'loaded at first use' : 'preloaded';
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = '$preload'\nivfflat.probes = 12\n");
	$node->restart;

	# the file's alias under a session's knob
	is($node->safe_psql('postgres', "$scan $count"),
		$all, "$name: ivfflat.probes from postgresql.conf applies");
	is($node->safe_psql('postgres', "$scan SET ivf.nprobe = 1; $count"),
		$one, "$name: SET ivf.nprobe wins over the file's ivfflat.probes");
	is(worker_rows('postgres', [], 'SET ivf.nprobe = 1;'),
		$one, "$name: in a parallel worker too");

	# per-database and per-role settings, applied at connection
	$node->safe_psql('postgres',
		q{ALTER DATABASE postgres SET ivfflat.probes = 12;
		  ALTER ROLE knob_user SET ivf.nprobe = 1;});
	is($node->safe_psql('postgres', "$scan $count", extra_params => [ '-U', 'knob_user' ]),
		$one, "$name: ALTER ROLE's ivf.nprobe wins over ALTER DATABASE's ivfflat.probes");
	is(worker_rows('postgres', [ '-U', 'knob_user' ], ''),
		$one, "$name: in a parallel worker too");
	$node->safe_psql('postgres',
		q{ALTER DATABASE postgres RESET ivfflat.probes;
		  ALTER ROLE knob_user RESET ivf.nprobe;});

	# ivf.params from the connection, the alias set later in the session
	local $ENV{PGOPTIONS} = '-c ivf.params=nprobe=1';
	is($node->safe_psql('postgres', "$scan SET ivfflat.probes = 12; $count"),
		$one, "$name: ivf.params wins over a later SET ivfflat.probes");
	is(worker_rows('postgres', [], 'SET ivfflat.probes = 12;'),
		$one, "$name: in a parallel worker too");
	is($node->safe_psql('postgres', "$scan SET ivf.nprobe = 12; $count"),
		$all, "$name: SET ivf.nprobe wins over ivf.params");
}

$node->stop;
done_testing();
