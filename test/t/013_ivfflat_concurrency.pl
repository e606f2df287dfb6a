# ivfflat under concurrency: pgbench clients inserting, deleting and running
# k-NN queries at once, with VACUUM running beside them.
#
#   t_few    32 dims, 4 lists: every insert goes to one of four list tails,
#            so clients keep racing to append a new group to the same list
#   t_empty  index built on an empty table (one list, no group): the
#            clients race to create the list's first group (and in phase 2
#            TRUNCATE empties it again and again, under the inserters)
#   t_holes  built from 4 distinct vectors with 16 lists, so most lists are
#            empty at build: first groups of many lists created concurrently
#   t_wide   3000 dims: two-page groups
#   t_cic    indexes built with CREATE INDEX CONCURRENTLY (one with a
#            parallel assignment pass) and REINDEX CONCURRENTLY while
#            clients write, then a parallel VACUUM
#
# Phase 1 rebuilds t_empty and t_holes several times and lets 8 clients hit
# the fresh indexes with inserts that check their own row is found through
# the index.  Phase 2 runs the full mix for about 15 s.  After each: pgbench
# exits 0 with no error and no failed transaction, ivf_check finds nothing,
# and after a final VACUUM an index scan probing every list returns exactly
# the table's non-NULL rows, ivf_index_info counts exactly those vectors
# and no dead slot.  Phase 3 builds indexes concurrently with writers.
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IvfTest;

srand(20130);
my $t_all = time;
my $clients = 8;
my $duration = 15;

my $node = PostgreSQL::Test::Cluster->new('ivfflat_concurrency');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 40
shared_buffers = 128MB
autovacuum = off
max_parallel_workers_per_gather = 0
deadlock_timeout = 100ms
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ivf');
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);

my %dims = (t_few => 32, t_empty => 32, t_holes => 32, t_wide => 3000);

# a vector of $d dims from the integer pgbench variable :a
sub vexpr
{
	my ($d, $var) = @_;
	$var //= ':a';
	return "ARRAY(SELECT sin($var * 0.0001 * g + g * 0.7) FROM generate_series(1, $d) g)::vector($d)";
}

# insert a row and check, in the same transaction, that the index finds it
# at distance 0 (nprobe 2: its own list is the nearest one); a miss raises
# an error, which pgbench reports.  A VACUUM that splits the row's list
# (the indexes are adaptive) between the insert and the check may leave it
# in a new list that is not among the two nearest (a split moves rows only
# among the lists it makes, src/README "Self-balancing lists"): then the
# row must still be found probing every list.
sub insert_script
{
	my ($t) = @_;
	my $d = $dims{$t};
	return qq{\\set a random(1, 1000000000)
BEGIN;
INSERT INTO $t (v) VALUES (} . vexpr($d) . qq{) RETURNING id AS new_id \\gset
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SET LOCAL ivf.nprobe = 2;
SELECT (v <-> } . vexpr($d) . qq{) AS dist FROM $t ORDER BY v <-> } . vexpr($d) . qq{ LIMIT 1 \\gset
\\if :dist > 0
SET LOCAL ivf.nprobe = 32768;
SELECT (v <-> } . vexpr($d) . qq{) AS dist FROM $t ORDER BY v <-> } . vexpr($d) . qq{ LIMIT 1 \\gset
\\if :dist > 0
SELECT 'own insert into $t not found by the index'::int;
\\endif
\\endif
COMMIT;
};
}

sub query_script
{
	my ($t) = @_;
	my $d = $dims{$t};
	return qq{\\set a random(1, 1000000000)
\\set np random(1, 4)
BEGIN;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT set_config('ivf.nprobe', :np::text, true);
SELECT id FROM $t ORDER BY v <-> } . vexpr($d) . qq{ LIMIT 10;
COMMIT;
};
}

sub delete_script
{
	my ($t, $range) = @_;
	return qq{\\set r random(1, $range)
DELETE FROM $t WHERE id BETWEEN :r AND :r + 4;
};
}

sub update_script
{
	my ($t, $range) = @_;
	my $d = $dims{$t};
	return qq{\\set r random(1, $range)
\\set a random(1, 1000000000)
UPDATE $t SET v = CASE WHEN :a::int % 10 = 0 THEN NULL ELSE } . vexpr($d) . qq{ END WHERE id = :r;
};
}

sub start_pgbench_here
{
	my ($name, $opts, $scripts, $timeout) = @_;
	return start_pgbench($node, $tmp, $name, $opts, $scripts, $timeout);
}

sub count_rows
{
	my ($t) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM $t WHERE v IS NOT NULL");
}

# The index agrees with the table, after a VACUUM that visits the index.
sub check_table
{
	my ($t, $why) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $idx = "${t}_idx";
	ivf_check_clean($node, 'postgres', $idx, "$why: ivf_check('$idx') clean");
	my $info = ivf_index_info($node, 'postgres', $idx);
	my $n = count_rows($t);
	my $q = '[' . join(',', (0) x $dims{$t}) . ']';
	is(index_scan_count($node, 'postgres', $t, 'v', '<->', $q, $info->{lists}),
		$n, "$why: an index scan of all lists returns all $n non-NULL rows of $t");
	$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $t");
	$info = ivf_index_info($node, 'postgres', $idx);
	is($info->{vectors}, $n, "$why: after VACUUM $idx holds exactly the table's $n vectors");
	is($info->{dead_slots}, 0, "$why: after VACUUM no dead slot in $idx");
	ivf_check_clean($node, 'postgres', $idx, "$why: ivf_check('$idx') clean after VACUUM");
	is(index_scan_count($node, 'postgres', $t, 'v', '<->', $q, $info->{lists}),
		$n, "$why: after VACUUM the index scan still returns all $n rows");
	note "$why: $t: $n rows; $idx: " . join(' ', map { "$_=$info->{$_}" } qw(lists vectors dead_slots empty_lists largest_list pages vectors_per_group));
	return $info;
}

# (Re)create the tables of phase 1: t_empty empty, t_holes with 4 distinct
# vectors repeated, 16 lists.
sub fresh_tables
{
	$node->safe_psql(
		'postgres', q{
DROP TABLE IF EXISTS t_empty, t_holes;
CREATE TABLE t_empty (id serial PRIMARY KEY, v vector(32));
CREATE INDEX t_empty_idx ON t_empty USING ivfflat (v vector_l2_ops) WITH (lists = 8);
CREATE TABLE t_holes (id serial PRIMARY KEY, v vector(32));
INSERT INTO t_holes (v)
SELECT ARRAY(SELECT CASE WHEN g = 1 + i % 4 THEN 10 ELSE 0 END FROM generate_series(1, 32) g)::vector
FROM generate_series(1, 400) i;
CREATE INDEX t_holes_idx ON t_holes USING ivfflat (v vector_l2_ops) WITH (lists = 16);
});
}

# The self-check of insert_script is not vacuous: the same \if with a
# distance that is not 0 (at nprobe 2 and probing every list) makes pgbench
# fail with the message.
{
	$dims{t_neg} = 4;
	my $script = insert_script('t_neg');
	$script =~ s/SELECT \(v <-> .*? LIMIT 1 \\gset/SELECT 0.5 AS dist \\gset/gs;
	$node->safe_psql('postgres', 'CREATE TABLE t_neg (id serial PRIMARY KEY, v vector(4))');
	my ($rc, $out, $err) = finish_pgbench(start_pgbench_here('negative', '-c 1 -t 1', { neg => [ 1, $script ] }, 60));
	isnt($rc, 0, 'negative control: pgbench fails when the own-insert check fails');
	like($err, qr/own insert into t_neg not found by the index/, 'negative control: with the check\'s message');
	delete $dims{t_neg};
}

# ---------------------------------------------------------------------------
# phase 1: first groups of empty lists, created concurrently
# ---------------------------------------------------------------------------
my $t0 = time;
for my $round (1 .. 4)
{
	fresh_tables();
	my $e = ivf_index_info($node, 'postgres', 't_empty_idx');
	my $h = ivf_index_info($node, 'postgres', 't_holes_idx');
	if ($round == 1)
	{
		is("$e->{lists}/$e->{vectors}/$e->{empty_lists}", '1/0/1',
			't_empty_idx built on an empty table: one list, empty');
		cmp_ok($h->{empty_lists}, '>=', 4, "t_holes_idx has empty lists at build ($h->{empty_lists} of $h->{lists})");
		my ($used, $plan) = uses_index($node, 'postgres',
			'SET enable_seqscan = off;',
			'SELECT id FROM t_holes ORDER BY v <-> ' . vexpr(32, '7') . ' LIMIT 10', 't_holes_idx');
		ok($used, 'k-NN on t_holes uses t_holes_idx') or diag($plan);
	}
	my $r = start_pgbench_here(
		"p1r$round", "-c $clients -j 2 -t 40",
		{
			ins_empty => [ 1, insert_script('t_empty') ],
			ins_holes => [ 1, insert_script('t_holes') ],
		},
		120);
	my @res = finish_pgbench($r);
	check_pgbench("phase 1 round $round", @res);
	my $h2 = ivf_index_info($node, 'postgres', 't_holes_idx');
	note "phase 1 round $round: t_holes_idx empty lists $h->{empty_lists} -> $h2->{empty_lists}";
	check_table('t_empty', "phase 1 round $round");
	check_table('t_holes', "phase 1 round $round");
}
note sprintf('phase 1: %.1fs', time - $t0);

# ---------------------------------------------------------------------------
# phase 2: the full mix with VACUUM beside it
# ---------------------------------------------------------------------------
$t0 = time;
fresh_tables();
$node->safe_psql(
	'postgres', qq{
CREATE TABLE t_few (id serial PRIMARY KEY, v vector(32));
INSERT INTO t_few (v) SELECT } . vexpr(32, 'i') . q{ FROM generate_series(1, 4000) i;
CREATE INDEX t_few_idx ON t_few USING ivfflat (v vector_l2_ops) WITH (lists = 4);
CREATE TABLE t_wide (id serial PRIMARY KEY, v vector(3000));
INSERT INTO t_wide (v) SELECT } . vexpr(3000, 'i') . q{ FROM generate_series(1, 200) i;
CREATE INDEX t_wide_idx ON t_wide USING ivfflat (v vector_l2_ops) WITH (lists = 3);
});
my ($used, $plan) = uses_index($node, 'postgres', 'SET enable_seqscan = off;',
	'SELECT id FROM t_few ORDER BY v <-> ' . vexpr(32, '7') . ' LIMIT 10', 't_few_idx');
ok($used, 'k-NN on t_few uses t_few_idx') or diag($plan);
($used, $plan) = uses_index($node, 'postgres', 'SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan;',
	'SELECT id FROM t_wide ORDER BY v <-> ' . vexpr(3000, '7') . ' LIMIT 10', 't_wide_idx');
ok($used, 'k-NN on t_wide uses t_wide_idx') or diag($plan);
my $few0 = ivf_index_info($node, 'postgres', 't_few_idx');

# VACUUM in a loop beside the clients
my $vac = start_pgbench_here(
	'vacuum', "-c 1 -T $duration",
	{
		vacuum => [
			1, q{VACUUM t_few;
VACUUM t_empty;
VACUUM t_holes;
VACUUM t_wide;
\sleep 200 ms
}
		]
	},
	$duration + 120);
# (simple protocol: with -M prepared a client's first PREPARE can block the
# whole pgbench thread behind TRUNCATE's lock request while another client
# of that thread holds the table lock: a client-side deadlock)
my $mix = start_pgbench_here(
	'mix', "-c $clients -j 2 -T $duration",
	{
		ins_few => [ 6, insert_script('t_few') ],
		del_few => [ 2, delete_script('t_few', 8000) ],
		upd_few => [ 1, update_script('t_few', 8000) ],
		q_few => [ 3, query_script('t_few') ],
		ins_empty => [ 3, insert_script('t_empty') ],
		del_empty => [ 1, delete_script('t_empty', 2000) ],
		trunc_empty => [ 1, "SET client_min_messages = warning;\nTRUNCATE t_empty;\n" ],
		q_empty => [ 1, query_script('t_empty') ],
		ins_holes => [ 2, insert_script('t_holes') ],
		del_holes => [ 1, delete_script('t_holes', 2000) ],
		q_holes => [ 1, query_script('t_holes') ],
		ins_wide => [ 1, insert_script('t_wide') ],
		del_wide => [ 1, delete_script('t_wide', 400) ],
		q_wide => [ 1, query_script('t_wide') ],
	},
	$duration + 120);
my @mixres = finish_pgbench($mix);
my @vacres = finish_pgbench($vac);
check_pgbench('phase 2 mix', @mixres);
my $nvac = check_pgbench('phase 2 VACUUM loop', @vacres);
note "phase 2: the VACUUM loop ran $nvac times";

for my $t (qw(t_few t_empty t_holes t_wide))
{
	my $info = check_table($t, "phase 2");
}
my $few1 = ivf_index_info($node, 'postgres', 't_few_idx');
cmp_ok($few1->{pages}, '>', $few0->{pages}, "t_few_idx grew new groups under concurrency ($few0->{pages} -> $few1->{pages} pages)");

# exactness after all that: nprobe = lists equals a sequential scan
for my $t (qw(t_few t_holes t_wide))
{
	my $lists = $node->safe_psql('postgres', "SELECT lists FROM ivf_index_info('${t}_idx')");
	my $sql = "SELECT string_agg(d::text, ',' ORDER BY d) FROM (SELECT v <-> " . vexpr($dims{$t}, '4242')
	  . " AS d FROM $t ORDER BY v <-> " . vexpr($dims{$t}, '4242') . " LIMIT 20) s";
	is( $node->safe_psql('postgres',
			"SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = $lists; $sql"),
		$node->safe_psql('postgres', "SET enable_indexscan = off; $sql"),
		"phase 2: $t: nprobe = lists gives the sequential scan's top 20");
}
note sprintf('phase 2: %.1fs', time - $t0);

# ---------------------------------------------------------------------------
# phase 3: CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY and a parallel
# VACUUM of two ivfflat indexes while clients insert, update and delete
# ---------------------------------------------------------------------------
$t0 = time;
$dims{t_cic} = 32;
$node->safe_psql(
	'postgres', qq{
CREATE TABLE t_cic (id serial PRIMARY KEY, v vector(32));
INSERT INTO t_cic (v) SELECT } . vexpr(32, 'i') . q{ FROM generate_series(1, 20000) i;
});
# (-M prepared: the k-NN queries run with the query vector as a parameter;
# every statement is prepared in the first second, before any DDL)
my $dml = start_pgbench_here(
	'cic', "-c 6 -j 2 -T 12 -M prepared",
	{
		ins => [ 4, insert_script('t_cic') ],
		del => [ 2, delete_script('t_cic', 30000) ],
		upd => [ 1, update_script('t_cic', 30000) ],
		q => [ 2, query_script('t_cic') ],
	},
	180);
sleep(1);
# the cosine index's assignment pass runs in parallel workers
$node->safe_psql('postgres',
	'CREATE INDEX CONCURRENTLY t_cic_idx ON t_cic USING ivfflat (v vector_l2_ops) WITH (lists = 20)');
my ($crc, $cout, $cerr) = $node->psql('postgres',
	'ALTER TABLE t_cic SET (parallel_workers = 2); '
	  . 'SET max_parallel_maintenance_workers = 2; SET client_min_messages = debug1; '
	  . 'CREATE INDEX CONCURRENTLY t_cic_cos ON t_cic USING ivfflat (v vector_cosine_ops) WITH (lists = 20)');
is($crc, 0, 'phase 3: parallel CREATE INDEX CONCURRENTLY under load succeeds')
  or diag($cerr);
like($cerr, qr/assignment pass with [12] parallel workers/,
	'phase 3: the build assigned rows in parallel workers');
$node->safe_psql('postgres', 'REINDEX INDEX CONCURRENTLY t_cic_idx');
my ($vrc, $vout, $verr) = $node->psql('postgres',
	'SET min_parallel_index_scan_size = 0; VACUUM (PARALLEL 2, VERBOSE, INDEX_CLEANUP ON) t_cic');
is($vrc, 0, 'phase 3: parallel VACUUM under load succeeds');
like($verr, qr/launched \d+ parallel vacuum workers? for index vacuuming/,
	'phase 3: VACUUM ran the index vacuuming in parallel workers');
check_pgbench('phase 3 DML during CREATE/REINDEX INDEX CONCURRENTLY', finish_pgbench($dml));
is( $node->safe_psql('postgres',
		q{SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',' ORDER BY indexrelid::regclass::text)
		  FROM pg_index WHERE indrelid = 't_cic'::regclass}),
	't_cic_cos:true,t_cic_idx:true,t_cic_pkey:true',
	'phase 3: the concurrently built indexes are valid');
check_table('t_cic', 'phase 3 (l2)');
ivf_check_clean($node, 'postgres', 't_cic_cos', 'phase 3: ivf_check(t_cic_cos) clean');
{
	my $n = count_rows('t_cic');
	my $ci = ivf_index_info($node, 'postgres', 't_cic_cos');
	is($ci->{vectors}, $n, "phase 3: t_cic_cos holds exactly the table's $n vectors");
	is(index_scan_count($node, 'postgres', 't_cic', 'v', '<=>', '[' . join(',', (1) x 32) . ']', $ci->{lists}),
		$n, "phase 3: a cosine index scan of all lists returns all $n rows");
}
# a parallel VACUUM after deletes, quiet this time
$node->safe_psql('postgres', 'DELETE FROM t_cic WHERE id % 3 = 0');
($vrc, $vout, $verr) = $node->psql('postgres',
	'SET min_parallel_index_scan_size = 0; VACUUM (PARALLEL 2, VERBOSE, INDEX_CLEANUP ON) t_cic');
like($verr, qr/launched \d+ parallel vacuum workers? for index vacuuming/,
	'phase 3: the second VACUUM is parallel too');
{
	my $n = count_rows('t_cic');
	for my $idx ('t_cic_idx', 't_cic_cos')
	{
		my $i = ivf_index_info($node, 'postgres', $idx);
		is("$i->{vectors}/$i->{dead_slots}", "$n/0", "phase 3: after parallel VACUUM $idx holds the table's $n vectors, no dead slot");
		ivf_check_clean($node, 'postgres', $idx, "phase 3: ivf_check($idx) clean after parallel VACUUM");
	}
}
note sprintf('phase 3: %.1fs; total %.1fs', time - $t0, time - $t_all);

$node->stop;
done_testing();
