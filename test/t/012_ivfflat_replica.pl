# ivfflat on a streaming replica: everything the primary does to an index
# (build, inserts, deletes, VACUUM, refilling, a first group in a list that
# was empty, two-page groups of 3000-dimension vectors) is replayed on the
# standby, which must then answer every query exactly like the primary (same
# ids, same distances) and pass ivf_check.  Meanwhile pgbench clients run
# k-NN queries on the standby while it replays (hot standby reads racing
# with replay must never fail).  Both nodes run with
# wal_consistency_checking = 'generic', so the standby also compares every
# replayed generic WAL record with the primary's page image.
#
# 9000 dimensions (five-page groups) are in the mix too: their groups are
# written with more than one WAL record.
#
# Also: an UNLOGGED table with an ivfflat index survives an immediate
# restart of the primary as an empty, sound index that takes new rows; and
# the standby, once promoted, takes writes into the replayed indexes.
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

srand(20120);
my $t_all = time;

my $conf = q{
wal_consistency_checking = 'generic'
shared_buffers = 64MB
max_wal_size = 1GB
autovacuum = off
max_parallel_workers_per_gather = 0
};

my $primary = PostgreSQL::Test::Cluster->new('ivfflat_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('ivfflat_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# No hot_standby_feedback: it would hold back the primary's VACUUM.  Replay
# waits for conflicting standby queries instead of cancelling them (they are
# short k-NN queries).
$standby->append_conf('postgresql.conf', $conf . "max_standby_streaming_delay = -1\n");
$standby->start;

# Everything below is created after the base backup: the standby gets the
# extension, the tables and the index builds through WAL.
$primary->safe_psql('postgres', 'CREATE EXTENSION ivf');

# tables: name => [dims, rows, lists]
my %tab = (
	r128 => [ 128, 6000, 20 ],
	r3000 => [ 3000, 300, 5 ],
	r9000 => [ 9000, 120, 3 ],
	rempty => [ 32, 0, 1 ],
);
for my $t (sort keys %tab)
{
	my ($dims, $rows) = @{ $tab{$t} };
	my $qv = random_vectors(6, $dims);
	$primary->safe_psql(
		'postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, v vector($dims));
SELECT setseed(0.12);
INSERT INTO $t SELECT i, ARRAY(SELECT random() FROM generate_series(1, $dims) WHERE i > 0)::vector
FROM generate_series(1, $rows) i;
CREATE TABLE ${t}_q (qid int PRIMARY KEY, v vector($dims));
INSERT INTO ${t}_q VALUES } . join(', ', map { "($_, '" . vec_literal($qv->[$_]) . "')" } 0 .. 5) . ';');
}
$primary->safe_psql(
	'postgres', q{
CREATE INDEX r128_l2 ON r128 USING ivfflat (v vector_l2_ops) WITH (lists = 20);
CREATE INDEX r128_cos ON r128 USING ivfflat (v vector_cosine_ops) WITH (lists = 20);
CREATE INDEX r3000_l2 ON r3000 USING ivfflat (v vector_l2_ops) WITH (lists = 5, adaptive = off);
CREATE INDEX r9000_l2 ON r9000 USING ivfflat (v vector_l2_ops) WITH (lists = 3);
CREATE INDEX rempty_l2 ON rempty USING ivfflat (v vector_l2_ops) WITH (lists = 10);
});
# r3000_l2 keeps its lists (adaptive = off): the inserts after VACUUM
# below must refill the groups it freed, which a split of its lists by that
# VACUUM would not leave (the other indexes may split: their splits are
# replayed and compared too; t/034_split.pl tests splits on a standby)
my %indexes = (
	r128_l2 => [ 'r128', '<->' ],
	r128_cos => [ 'r128', '<=>' ],
	r3000_l2 => [ 'r3000', '<->' ],
	r9000_l2 => [ 'r9000', '<->' ],
	rempty_l2 => [ 'rempty', '<->' ],
);

# One string with the answers of every query of every index at nprobe 1, 3
# and all lists: "index nprobe qid: id:dist,..." lines.
sub answers
{
	my ($node) = @_;
	my @out;
	for my $idx (sort keys %indexes)
	{
		my ($t, $op) = @{ $indexes{$idx} };
		my $lists = $node->safe_psql('postgres', "SELECT lists FROM ivf_index_info('$idx')");
		for my $np (1, 3, $lists)
		{
			my $res = $node->safe_psql(
				'postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = $np;
SELECT '$idx $np ' || q.qid || ': ' || coalesce(string_agg(r.id || ':' || r.d, ',' ORDER BY r.d, r.id), '')
FROM ${t}_q q LEFT JOIN LATERAL
  (SELECT x.id, x.v $op q.v AS d FROM $t x ORDER BY x.v $op q.v LIMIT 10) r ON true
GROUP BY q.qid ORDER BY q.qid});
			push @out, $res;
		}
	}
	return join("\n", @out);
}

sub infos
{
	my ($node) = @_;
	return join("\n",
		map { my $i = ivf_index_info($node, 'postgres', $_); "$_: " . join(' ', map { "$_=$i->{$_}" } sort keys %$i) }
		  sort keys %indexes);
}

my $ncompare = 0;

# The standby has replayed everything and answers exactly like the primary.
sub compare_nodes
{
	my ($why) = @_;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	my $pa = answers($primary);
	my $sa = answers($standby);
	my $nlines = () = $pa =~ /\n/g;
	is($sa, $pa, "$why: the standby's k-NN answers equal the primary's ("
		  . ($nlines + 1) . ' query/nprobe/index combinations, ids and distances)');
	my $pi = infos($primary);
	is(infos($standby), $pi, "$why: ivf_index_info equal on both nodes");
	note "$why:\n$pi";
	for my $idx (sort keys %indexes)
	{
		ivf_check_clean($standby, 'postgres', $idx, "$why: ivf_check('$idx') clean on the standby");
		ivf_check_clean($primary, 'postgres', $idx, "$why: ivf_check('$idx') clean on the primary");
	}
	for my $t (sort keys %tab)
	{
		my $n = $primary->safe_psql('postgres', "SELECT count(*) FROM $t WHERE v IS NOT NULL");
		my $lists = $standby->safe_psql('postgres', "SELECT lists FROM ivf_index_info('${t}_l2')");
		is(index_scan_count($standby, 'postgres', $t, 'v', '<->', "[" . join(',', (1) x $tab{$t}[0]) . "]", $lists),
			$n, "$why: on the standby an index scan of all lists finds all $n rows of $t");
	}
	$ncompare++;
	return $pa;
}

# the standby really uses the index
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my ($used, $plan) = uses_index($standby, 'postgres', 'SET enable_seqscan = off;',
	q{SELECT id FROM r128 ORDER BY v <-> (SELECT v FROM r128_q WHERE qid = 0) LIMIT 10}, 'r128_l2');
ok($used, 'the standby plans an index scan on r128_l2') or diag($plan);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

my $after_build = compare_nodes('after the builds');
like($after_build, qr/^rempty_l2 1 0: $/m, 'the empty index answers nothing');

is(ivf_index_info($primary, 'postgres', 'r9000_l2')->{pages} > 120 * 5, 1,
	'r9000_l2: five pages per 9000-dim vector');

# ---- k-NN readers on the standby while it replays what follows ----
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my %readers;
for my $idx (sort keys %indexes)
{
	my ($t, $op) = @{ $indexes{$idx} };
	my $d = $tab{$t}[0];
	$readers{"q_$idx"} = [
		$t eq 'r128' ? 4 : 1, qq{\\set a random(1, 1000000000)
\\set np random(1, 5)
BEGIN;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT set_config('ivf.nprobe', :np::text, true);
SELECT id FROM $t ORDER BY v $op ARRAY(SELECT sin(:a * 0.0001 * g + g) FROM generate_series(1, $d) g)::vector($d) LIMIT 10;
COMMIT;
}
	];
}
my $reader = start_pgbench($standby, $tmp, 'standby_readers', '-c 4 -j 2 -T 12', \%readers, 180);

# ---- inserts, deletes, VACUUM, more inserts ----
$primary->safe_psql(
	'postgres', q{
SELECT setseed(0.34);
INSERT INTO r128 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 128) WHERE i > 0)::vector
FROM generate_series(6001, 9000) i;
INSERT INTO r128 VALUES (9001, NULL);
INSERT INTO r3000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 3000) WHERE i > 0)::vector
FROM generate_series(301, 450) i;
INSERT INTO r9000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 9000) WHERE i > 0)::vector
FROM generate_series(121, 200) i;
INSERT INTO rempty SELECT i, ARRAY(SELECT random() FROM generate_series(1, 32) WHERE i > 0)::vector
FROM generate_series(1, 700) i;
});
compare_nodes('after inserts');

$primary->safe_psql(
	'postgres', q{
DELETE FROM r128 WHERE id % 3 = 0 OR id BETWEEN 100 AND 1100;
DELETE FROM r3000 WHERE id % 2 = 0;
DELETE FROM r9000 WHERE id % 3 = 0;
DELETE FROM rempty WHERE id % 4 = 1;
});
compare_nodes('after deletes (before VACUUM)');

$primary->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) r128, r3000, r9000, rempty');
my $pi = ivf_index_info($primary, 'postgres', 'r3000_l2');
is($pi->{dead_slots}, 0, 'VACUUM left no dead slot in r3000_l2');
compare_nodes('after VACUUM');

$primary->safe_psql(
	'postgres', q{
SELECT setseed(0.56);
INSERT INTO r128 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 128) WHERE i > 0)::vector
FROM generate_series(10001, 12000) i;
INSERT INTO r3000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 3000) WHERE i > 0)::vector
FROM generate_series(1001, 1100) i;
INSERT INTO r9000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 9000) WHERE i > 0)::vector
FROM generate_series(1001, 1040) i;
INSERT INTO rempty SELECT i, ARRAY(SELECT random() FROM generate_series(1, 32) WHERE i > 0)::vector
FROM generate_series(1001, 1500) i;
UPDATE r128 SET v = NULL WHERE id BETWEEN 2000 AND 2100;
UPDATE r128 SET v = (SELECT v FROM r128_q WHERE qid = 1) WHERE id = 5000;
});
my $pi2 = ivf_index_info($primary, 'postgres', 'r3000_l2');
cmp_ok($pi2->{pages}, '<=', $pi->{pages},
	"r3000_l2: 100 inserts after VACUUM reuse the freed groups (pages $pi->{pages} -> $pi2->{pages})");
my $refilled = compare_nodes('after inserts that refill freed slots');
like($refilled, qr/^r128_l2 20 1: 5000:0,/m, 'the updated row is found at distance 0 (all lists)');
my $nread = check_pgbench('k-NN readers on the standby during replay', finish_pgbench($reader));

# ---- UNLOGGED table, immediate restart of the primary ----
$primary->safe_psql(
	'postgres', q{
CREATE UNLOGGED TABLE u (id int, v vector(16));
INSERT INTO u SELECT i, ARRAY(SELECT random() FROM generate_series(1, 16) WHERE i > 0)::vector
FROM generate_series(1, 3000) i;
CREATE INDEX u_idx ON u USING ivfflat (v vector_l2_ops) WITH (lists = 10);
});
my $ui = ivf_index_info($primary, 'postgres', 'u_idx');
is($ui->{vectors} . '/' . $ui->{lists}, '3000/10', 'unlogged index built: 3000 vectors, 10 lists');
ivf_check_clean($primary, 'postgres', 'u_idx', 'unlogged index sound before the crash');

$primary->stop('immediate');
$primary->start;
is($primary->safe_psql('postgres', 'SELECT count(*) FROM u'), 0,
	'after an immediate restart the unlogged table is empty');
is( $primary->safe_psql('postgres', q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'u_idx'::regclass}),
	't', 'its index is still valid');
ivf_check_clean($primary, 'postgres', 'u_idx', 'the reset unlogged index passes ivf_check');
$ui = ivf_index_info($primary, 'postgres', 'u_idx');
is($ui->{vectors}, 0, 'the reset unlogged index is empty');
note 'reset unlogged index: ' . join(' ', map { "$_=$ui->{$_}" } sort keys %$ui);
$primary->safe_psql(
	'postgres', q{
INSERT INTO u SELECT i, ARRAY(SELECT random() FROM generate_series(1, 16) WHERE i > 0)::vector
FROM generate_series(1, 1000) i;
INSERT INTO u VALUES (-1, '[9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9]');
});
ivf_check_clean($primary, 'postgres', 'u_idx', 'the unlogged index takes inserts after the reset');
is(index_scan_count($primary, 'postgres', 'u', 'v', '<->', '[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]', 32768),
	1001, 'an index scan of all lists finds all 1001 rows inserted after the reset');
($used, $plan) = uses_index($primary, 'postgres', 'SET enable_seqscan = off;',
	q{SELECT id FROM u ORDER BY v <-> '[9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9]' LIMIT 1}, 'u_idx');
ok($used, 'the unlogged index is used after the reset') or diag($plan);
is( $primary->safe_psql(
		'postgres',
		q{SET enable_seqscan = off; SELECT id FROM u ORDER BY v <-> '[9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9]' LIMIT 1}),
	-1,
	'the unlogged index finds a row inserted after the reset');
$primary->safe_psql('postgres', 'DELETE FROM u WHERE id % 2 = 0; VACUUM (INDEX_CLEANUP ON) u');
ivf_check_clean($primary, 'postgres', 'u_idx', 'the unlogged index after DELETE and VACUUM');
is(ivf_index_info($primary, 'postgres', 'u_idx')->{vectors},
	$primary->safe_psql('postgres', 'SELECT count(*) FROM u'), 'unlogged index count = table count after VACUUM');

# the standby reconnects to the restarted primary and keeps up (the primary's
# crash recovery also ran with wal_consistency_checking)
$primary->safe_psql(
	'postgres', q{
SELECT setseed(0.78);
INSERT INTO r128 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 128) WHERE i > 0)::vector
FROM generate_series(20001, 21000) i;
INSERT INTO r3000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 3000) WHERE i > 0)::vector
FROM generate_series(2001, 2020) i;
});
compare_nodes('after the primary crashed and restarted');

# ---- promote the standby: its replayed indexes take writes ----
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not leave recovery';
$standby->safe_psql(
	'postgres', q{
INSERT INTO r128 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 128) WHERE i > 0)::vector
FROM generate_series(30001, 31000) i;
INSERT INTO r3000 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 3000) WHERE i > 0)::vector
FROM generate_series(3001, 3020) i;
DELETE FROM r128 WHERE id % 5 = 0;
VACUUM (INDEX_CLEANUP ON) r128, r3000;
});
for my $idx (sort keys %indexes)
{
	ivf_check_clean($standby, 'postgres', $idx, "promoted standby: ivf_check('$idx') clean after writes");
}
for my $t ('r128', 'r3000')
{
	my $n = $standby->safe_psql('postgres', "SELECT count(*) FROM $t WHERE v IS NOT NULL");
	is(ivf_index_info($standby, 'postgres', "${t}_l2")->{vectors}, $n,
		"promoted standby: ${t}_l2 holds the table's $n vectors");
}
is($standby->safe_psql('postgres', 'SELECT count(*) FROM u'), 0,
	'promoted standby: the unlogged table starts empty');
ivf_check_clean($standby, 'postgres', 'u_idx', 'promoted standby: the unlogged index is sound');
$standby->safe_psql('postgres',
	q{INSERT INTO u SELECT i, ARRAY(SELECT i % 5 FROM generate_series(1, 16) WHERE i > 0)::vector FROM generate_series(1, 100) i});
is(index_scan_count($standby, 'postgres', 'u', 'v', '<->', '[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]', 32768),
	100, 'promoted standby: the unlogged index takes and finds new rows');

note sprintf('%d comparisons, total %.1fs', $ncompare, time - $t_all);
$standby->stop;
done_testing();
