# Self-balancing lists (src/README "Self-balancing lists", issue #17): the
# maintainer splits lists that outgrew their bound, and no row is lost or
# found twice, whether the split runs alone, beside inserts and scans, is
# killed at any of its steps, or is replayed by a standby.
#
#  (a) an index created on an empty table, loaded, then ivf_rebalance:
#      the one list splits toward the lists option's target, and the
#      first split trains codebook 1 for the codes (its codebook 0 is
#      the empty build's, all zero)
#  (b) an index built on the first 10% of the rows, the rest inserted:
#      VACUUM splits (no ivf_rebalance)
#  (c) the maintainer parked at 'copy' (ivf.debug_maintenance_pause) while
#      a session inserts and a cursor's scan starts: the rows inserted
#      during the copy are found after the switch, and the scan started
#      before the switch and one started after each return every row once;
#      a VACUUM started meanwhile waits for the maintenance lock
#  (d) parked at 'stamp', 'copy', 'close', 'switch' and killed (immediate
#      stop): after the restart no row is lost or duplicated
#  (e) a streaming standby replays the splits and answers exactly, and
#      refuses ivf_rebalance
#  (f) halfvec with codes, 3000 dimensions (two-page groups and centroid
#      rows), cosine and inner product (spherical k-means)
#  (g) most rows deleted below a smaller lists target: VACUUM merges the
#      small lists, each pair into one
#  (h) drift (built on the rows lowest in one coordinate): the splits
#      also rewrite neighbouring lists whose rows are nearer a new list
#  (i) a crash just after the switch, with nothing else flushing the WAL:
#      the split survives
#  (j) ivf_rebalance beside a cursor of its own transaction, which reads
#      on through the lists it retired; a VACUUM recycles them once the
#      cursor is gone, with no transaction id assigned in between
#
# After each: ivf_check finds no problem, an index scan with nprobe = every
# list returns each row of the table exactly once, and the k nearest rows
# of several queries are those of an exact sequential scan (ids and
# distances).  The primary runs with wal_consistency_checking = 'generic',
# so every GenericXLog record the maintainer writes is checked at replay.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

srand(34034);

my $dims = 16;
# the key the maintainer's pause waits on (ivfmaintain.h)
my $pause_key = 1230390864;

my $conf = q{
wal_consistency_checking = 'generic'
autovacuum = off
max_parallel_workers_per_gather = 0
};
my $primary = PostgreSQL::Test::Cluster->new('split_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
# a slot keeps the WAL the standby has not received: the maintainer's
# copies with wal_consistency_checking's page images outrun max_wal_size
# on a slow machine, and the standby would find its segment removed
$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('split_standby')");
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('split_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	$conf . "max_standby_streaming_delay = -1\nprimary_slot_name = 'split_standby'\n");
$standby->start;

$primary->safe_psql('postgres', 'CREATE EXTENSION ivf');

my $vecs = clustered_vectors(20000, $dims, 40, 0.15);
my $copy = write_copy_file($primary->basedir . '/rows.copy', $vecs, 1);
my @queries = map { vec_literal($vecs->[ int(rand(@$vecs)) ]) } 1 .. 5;

sub info
{
	my ($node, $index, $col) = @_;
	return $node->safe_psql('postgres', "SELECT $col FROM ivf_index_info('$index')");
}

sub load
{
	my ($table, $from, $to, $node) = @_;
	$node //= $primary;
	$node->safe_psql('postgres',
		"CREATE TEMP TABLE l (id int, v vector($dims));
		 COPY l FROM '$copy';
		 INSERT INTO $table SELECT * FROM l WHERE id BETWEEN $from AND $to;");
}

# Every row exactly once through the index, and exact k nearest rows.
sub check_index
{
	my ($node, $table, $index, $what, $op, $qs) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$op //= '<->';
	$qs //= \@queries;
	my $lists = info($node, $index, 'lists');
	my $total = $node->safe_psql('postgres', "SELECT count(*) FROM $table");

	ivf_check_clean($node, 'postgres', $index, "$what: ivf_check finds no problem");

	my $set = "SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = $lists;";
	my ($used) = uses_index($node, 'postgres', $set,
		"SELECT id FROM $table ORDER BY v $op '$qs->[0]'", $index);
	ok($used, "$what: the scans below use $index");
	is( $node->safe_psql('postgres',
			"$set SELECT count(*) || '/' || count(DISTINCT id) FROM (SELECT id FROM $table ORDER BY v $op '$qs->[0]') s"),
		"$total/$total",
		"$what: an index scan with nprobe = $lists lists returns each of the $total rows once");

	my $bad = 0;
	for my $q (@$qs)
	{
		my $sql = "SELECT string_agg(id || ':' || d, ',') FROM (SELECT id, v $op '$q' AS d FROM $table ORDER BY v $op '$q', id LIMIT 20) s";
		my $idx = $node->safe_psql('postgres', "$set $sql");
		my $seq = $node->safe_psql('postgres',
			"SET enable_indexscan = off; SET enable_bitmapscan = off; $sql");
		$bad++ if $idx ne $seq;
	}
	is($bad, 0, "$what: 20 nearest rows of " . scalar(@$qs) . " queries equal a sequential scan's");
}

# A background session that holds the pause key, and one that runs the
# maintainer until it parks at $step.
sub park
{
	my ($step, $sql, $node, $no_flush) = @_;
	$node //= $primary;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key)");
	my $m = $node->background_psql('postgres', on_error_stop => 0);
	$m->query_until(qr/started/, "SET ivf.debug_maintenance_pause = '$step';\n\\echo started\n$sql;\n");
	my $parked = poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $pause_key") eq '1';
		},
		120);
	ok($parked, "the maintainer parks at '$step'");
	# A commit that wrote WAL flushes what was written so far: a crash now
	# finds the maintainer's records on disk and step 0 has something to
	# roll back.  (A commit without WAL of its own, txid_current(), only
	# nudges the WAL writer.)
	$node->safe_psql('postgres',
		'CREATE TABLE IF NOT EXISTS wal_flush (i int); INSERT INTO wal_flush VALUES (1)')
	  unless $no_flush;
	return ($holder, $m);
}

# ---- (a) created empty, loaded, ivf_rebalance
{
	$primary->safe_psql('postgres',
		"CREATE TABLE ta (id int, v vector($dims));
		 CREATE INDEX ta_idx ON ta USING ivfflat (v vector_l2_ops) WITH (lists = 20)");
	is(info($primary, 'ta_idx', 'lists'), '1', '(a) an index on an empty table has one list');
	load('ta', 1, 20000);
	my ($rc, $r, $err) = $primary->psql('postgres',
		"SET client_min_messages = debug1; SELECT splits, vectors_copied FROM ivf_rebalance('ta_idx')");
	is($rc, 0, '(a) ivf_rebalance runs');
	# the empty build's all-zero codebook 0 is replaced for the new lists
	like($err, qr/ivf index "ta_idx": trained codebook 1 at generation 1/,
		'(a) the first split trains codebook 1 (codes checked against it by ivf_check)');
	my ($splits, $copied) = split /\|/, $r;
	cmp_ok($splits, '>', 0, "(a) ivf_rebalance splits ($splits)");
	is($copied, 20000, '(a) it copied every row of the one list once');
	my $lists = info($primary, 'ta_idx', 'lists');
	cmp_ok($lists, '>=', 10, "(a) the lists grew toward the target of 20 ($lists)");
	is(info($primary, 'ta_idx', 'generation'), 1 + $splits, '(a) one generation per split');
	check_index($primary, 'ta', 'ta_idx', '(a)');

	# the retired list goes once no snapshot predates its retire_xid: a
	# transaction that takes an xid moves the horizon past it
	$primary->safe_psql('postgres', 'SELECT txid_current()');
	my $recycled = $primary->safe_psql('postgres', "SELECT lists_recycled FROM ivf_rebalance('ta_idx')");
	cmp_ok($recycled, '>=', 1, "(a) a second ivf_rebalance recycles the retired list ($recycled)");
	is(info($primary, 'ta_idx', 'list_slots'), $lists + 1, '(a) its slot stays, free for reuse');
	check_index($primary, 'ta', 'ta_idx', '(a) after recycling');
}

# ---- (b) built on 10%, the rest inserted, VACUUM splits
{
	$primary->safe_psql('postgres', "CREATE TABLE tb (id int, v vector($dims))");
	load('tb', 1, 2000);
	$primary->safe_psql('postgres', 'CREATE INDEX tb_idx ON tb USING ivfflat (v vector_l2_ops)');
	my $before = info($primary, 'tb_idx', 'lists');
	load('tb', 2001, 20000);
	$primary->safe_psql('postgres', 'VACUUM tb');
	my $splits = info($primary, 'tb_idx', 'splits');
	cmp_ok($splits, '>', 0, "(b) VACUUM splits ($splits)");
	my $lists = info($primary, 'tb_idx', 'lists');
	cmp_ok($lists, '>', $before, "(b) from $before lists to $lists");
	check_index($primary, 'tb', 'tb_idx', '(b)');
}

# ---- (f) other layouts and metrics: halfvec elements with codes, groups
# and centroid rows of two pages (3000 dimensions, no codes), spherical
# k-means (cosine, inner product)
for my $case (
	[ 'fh', 'halfvec(300)', 'halfvec_l2_ops', '<->', 3000, 6 ],
	[ 'fw', 'vector(3000)', 'vector_l2_ops', '<->', 600, 4 ],
	[ 'fc', 'vector(24)', 'vector_cosine_ops', '<=>', 4000, 8 ],
	[ 'fi', 'vector(24)', 'vector_ip_ops', '<#>', 4000, 8 ])
{
	my ($t, $type, $opclass, $op, $rows, $lists) = @$case;
	my ($d) = $type =~ /\((\d+)\)/;
	$primary->safe_psql('postgres',
		"CREATE TABLE $t (id int, v $type);
		 CREATE INDEX ${t}_idx ON $t USING ivfflat (v $opclass) WITH (lists = $lists);
		 SELECT setseed(0.34);
		 INSERT INTO $t SELECT i, ARRAY(SELECT sin((i % 9) * 0.7 + j * 0.3) + 0.05 * random()
		   FROM generate_series(1, $d) j WHERE i > 0)::$type FROM generate_series(1, $rows) i;");
	my $splits = $primary->safe_psql('postgres', "SELECT splits FROM ivf_rebalance('${t}_idx')");
	is($splits, 1, "(f) $t ($type, $opclass): one split");
	cmp_ok(info($primary, "${t}_idx", 'lists'), '>=', 2, "(f) $t: into several lists");
	my @qs = split /\n/, $primary->safe_psql('postgres',
		"SELECT v::text FROM $t WHERE id IN (7, 100, 333) ORDER BY id");
	check_index($primary, $t, "${t}_idx", "(f) $t", $op, \@qs);
}

# ---- (e) the standby replays both
{
	$primary->wait_for_catchup($standby);
	check_index($standby, 'ta', 'ta_idx', '(e) standby, ta');
	check_index($standby, 'tb', 'tb_idx', '(e) standby, tb');
	my @qs = split /\n/, $standby->safe_psql('postgres',
		"SELECT v::text FROM fw WHERE id IN (7, 100, 333) ORDER BY id");
	check_index($standby, 'fw', 'fw_idx', '(e) standby, fw (3000 dimensions)', '<->', \@qs);
	my ($rc, $out, $err) = $standby->psql('postgres', "SELECT * FROM ivf_rebalance('ta_idx')");
	like($err, qr/cannot rebalance index "ta_idx" during recovery/, '(e) ivf_rebalance is refused on the standby');
	$standby->stop;
	$primary->safe_psql('postgres', "SELECT pg_drop_replication_slot('split_standby')");
}

# ---- (c) parked at 'copy' beside inserts and a scan
{
	$primary->safe_psql('postgres',
		"CREATE TABLE tc (id int, v vector($dims));
		 CREATE INDEX tc_idx ON tc USING ivfflat (v vector_l2_ops) WITH (lists = 10)");
	load('tc', 1, 10000);
	my ($holder, $m) = park('copy', "SELECT splits FROM ivf_rebalance('tc_idx')");

	# a cursor's scan starts before the switch (view of generation 1)
	my $cur = $primary->background_psql('postgres');
	$cur->query_safe(
		"BEGIN ISOLATION LEVEL REPEATABLE READ;
		 SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = 1000;
		 DECLARE c CURSOR FOR SELECT id FROM tc ORDER BY v <-> '$queries[1]';");
	my $first = $cur->query_safe('FETCH 100 FROM c');

	# rows inserted while the copy is parked
	load('tc', 10001, 12000);

	# a VACUUM meanwhile waits for the maintenance lock (its index passes
	# take it: no row may leave a list being copied), then completes
	$primary->safe_psql('postgres', 'DELETE FROM tc WHERE id % 100 = 0');
	my $vac = $primary->background_psql('postgres', on_error_stop => 0);
	$vac->query_until(qr/started/, "\\echo started\nVACUUM tc;\n\\echo vacuumed\n");
	ok( poll_until(
			sub {
				$primary->safe_psql('postgres',
					"SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND NOT granted AND classid = 'pg_class'::regclass AND objid = 'tc_idx'::regclass AND objsubid = 1"
				) eq '1';
			},
			60),
		'(c) a VACUUM of the table waits for the maintenance lock');

	$holder->query_safe("SELECT pg_advisory_unlock($pause_key)");
	my $done = poll_until(sub { info($primary, 'tc_idx', 'splits') > 0 }, 120);
	ok($done, '(c) the split finished after the release');
	$m->quit;
	$holder->quit;
	$vac->query_until(qr/vacuumed/, '');
	$vac->quit;
	pass('(c) the VACUUM completed after the split');

	my $rest = $cur->query_safe('FETCH ALL FROM c');
	my @ids = (split(/\n/, $first), split(/\n/, $rest));
	my %seen;
	$seen{$_}++ for @ids;
	is(scalar(@ids), 10000, '(c) the scan started before the switch returns the 10000 rows its snapshot sees');
	is(scalar(keys %seen), 10000, '(c) each once');
	$cur->query_safe('COMMIT');
	$cur->quit;

	check_index($primary, 'tc', 'tc_idx', '(c) after the switch, with the rows inserted during the copy');
}

# ---- (d) killed at each step
for my $step (qw(stamp copy close switch))
{
	my $t = "td_$step";
	$primary->safe_psql('postgres',
		"CREATE TABLE $t (id int, v vector($dims));
		 CREATE INDEX ${t}_idx ON $t USING ivfflat (v vector_l2_ops) WITH (lists = 5)");
	load($t, 1, 5000);
	my ($holder, $m) = park($step, "SELECT splits FROM ivf_rebalance('${t}_idx')");
	$primary->stop('immediate');
	eval { $m->quit };
	eval { $holder->quit };
	$primary->start;

	# inserts after the restart (into a closed list, for 'close')
	load($t, 5001, 5500);
	is( $primary->safe_psql('postgres', "SELECT count(*) FROM $t"),
		'5500', "(d) $step: the table holds its rows");
	is( $primary->safe_psql('postgres',
			"SELECT generation FROM ivf_index_info('${t}_idx')"),
		$step eq 'switch' ? '2' : '1',
		"(d) $step: the switch is durable exactly when its record was written");
	check_index($primary, $t, "${t}_idx", "(d) killed at '$step'");

	# the next run rolls the interrupted operation back and splits again
	# (killed after the switch: the split is done, nothing is left to do)
	my $splits = $primary->safe_psql('postgres', "SELECT splits FROM ivf_rebalance('${t}_idx')");
	is($splits, $step eq 'switch' ? '0' : '1', "(d) $step: ivf_rebalance after the restart splits $splits list(s)");
	is(info($primary, "${t}_idx", 'lists'), 5, "(d) $step: 5 lists then");
	# the rolled back lists' slots are free and taken again
	is(info($primary, "${t}_idx", 'list_slots'), 6, "(d) $step: in the 6 slots there were");
	check_index($primary, $t, "${t}_idx", "(d) $step: after the next ivf_rebalance");
}

# ---- (g) merges: after most rows are deleted, VACUUM merges small lists
{
	$primary->safe_psql('postgres',
		"CREATE TABLE tg (id int, v vector($dims))");
	load('tg', 1, 20000);
	$primary->safe_psql('postgres',
		"CREATE INDEX tg_idx ON tg USING ivfflat (v vector_l2_ops) WITH (lists = 20)");
	is(info($primary, 'tg_idx', 'lists'), '20', '(g) built with 20 lists');
	# a target of 4 lists; 2,000 rows left: lists of ~100 rows, below a
	# quarter of the 500-row target size
	$primary->safe_psql('postgres',
		"ALTER INDEX tg_idx SET (lists = 4); DELETE FROM tg WHERE id % 10 <> 0; VACUUM tg");
	my $merges = info($primary, 'tg_idx', 'merges');
	cmp_ok($merges, '>', 0, "(g) VACUUM merges lists ($merges)");
	my $lists = info($primary, 'tg_idx', 'lists');
	is($lists, 20 - $merges, "(g) each merge replaces two lists by one ($lists lists)");
	is(info($primary, 'tg_idx', 'splits'), '0', '(g) and splits none');
	check_index($primary, 'tg', 'tg_idx', '(g) after the merges');
	# inserts go to the merged lists and are found
	$primary->safe_psql('postgres',
		"INSERT INTO tg SELECT id + 100000, v FROM tg WHERE id % 100 = 0");
	check_index($primary, 'tg', 'tg_idx', '(g) after inserts into merged lists');
}

# ---- (h) drift: built on the 10% of rows lowest in one coordinate, the
# rest inserted; the splits rewrite neighbours whose rows are now nearer
# a new list (reassignment)
{
	$primary->safe_psql('postgres',
		"CREATE TABLE th (id int, v vector($dims));
		 CREATE TEMP TABLE l (id int, v vector($dims));
		 COPY l FROM '$copy';
		 CREATE TEMP TABLE first AS SELECT id FROM l ORDER BY (v::real[])[1], id LIMIT 2000;
		 INSERT INTO th SELECT * FROM l WHERE id IN (SELECT id FROM first);
		 CREATE INDEX th_idx ON th USING ivfflat (v vector_l2_ops) WITH (lists = 20);
		 INSERT INTO th SELECT * FROM l WHERE id NOT IN (SELECT id FROM first);
		 VACUUM th;");
	my ($splits, $reassigned) = split /\|/,
	  $primary->safe_psql('postgres', "SELECT splits, vectors_reassigned FROM ivf_index_info('th_idx')");
	cmp_ok($splits, '>', 0, "(h) VACUUM splits ($splits)");
	cmp_ok($reassigned, '>', 0, "(h) and moves rows of neighbouring lists to the new ones ($reassigned)");
	check_index($primary, 'th', 'th_idx', '(h) after splits with reassignment');

	# each row is in its nearest live list, as after a fresh build: found
	# by an index scan for itself at nprobe 1 (the rows far from the first
	# 10% are in the lists that grew near them, not in the stretched lists
	# they first went to)
	my ($home, $sample) = split /\|/, $primary->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = 1;
		 SELECT count(*) FILTER (WHERE (SELECT t2.id FROM th t2 ORDER BY t2.v <-> t1.v LIMIT 1) = t1.id),
		        count(*)
		 FROM th t1 WHERE t1.id % 50 = 3");
	cmp_ok($home, '>=', 0.98 * $sample,
		"(h) $home of $sample rows are in their nearest list");
}

# ---- (j) ivf_rebalance beside a cursor of its own transaction: the lists
# it retires stay readable for the cursor (its own snapshot counts), and
# the cursor returns every row once
{
	$primary->safe_psql('postgres', "CREATE TABLE tj (id int, v vector($dims))");
	load('tj', 1, 1000);
	$primary->safe_psql('postgres',
		"CREATE INDEX tj_idx ON tj USING ivfflat (v vector_l2_ops) WITH (lists = 50)");
	load('tj', 1001, 10000);
	my @out = split /\n/, $primary->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off;
		 SET ivf.nprobe = 1; SET ivf.iterative_scan = relaxed_order;
		 BEGIN;
		 DECLARE c CURSOR FOR SELECT id FROM tj ORDER BY v <-> '$queries[2]';
		 FETCH 100 FROM c;
		 SELECT 'rebalance', splits, lists_recycled FROM ivf_rebalance('tj_idx');
		 FETCH ALL FROM c;
		 COMMIT;");
	my ($reb) = grep { /^rebalance/ } @out;
	my (undef, $splits, $recycled) = split /\|/, $reb;
	cmp_ok($splits, '>', 0, "(j) ivf_rebalance splits ($splits) while the cursor is open");
	is($recycled, '0', '(j) and recycles none of the lists it retired');
	my @ids = grep { !/^rebalance/ } @out;
	my %seen;
	$seen{$_}++ for @ids;
	is(scalar(@ids) . '/' . scalar(keys %seen), '10000/10000',
		'(j) the cursor returns each of the 10000 rows once');
	check_index($primary, 'tj', 'tj_idx', '(j) after the cursor');

	# with no snapshot left from before the switch, a VACUUM recycles them
	# although no transaction id was assigned since
	my $before = info($primary, 'tj_idx', 'lists_recycled');
	$primary->safe_psql('postgres', 'VACUUM tj');
	cmp_ok(info($primary, 'tj_idx', 'lists_recycled'), '>', $before,
		'(j) a VACUUM then recycles the retired lists');
	check_index($primary, 'tj', 'tj_idx', '(j) after recycling');
}

# ---- (i) a switch is durable once ivf_rebalance has passed it
# ivf_rebalance assigns no transaction id, so its commit does not flush the
# WAL; the maintainer flushes the switch record itself.  This node keeps
# its WAL in memory (default shared_buffers, so no eviction flushes it; a
# WAL writer that sleeps 10 s), and nothing flushes it before the crash.
{
	my $node = PostgreSQL::Test::Cluster->new('split_durable');
	$node->init;
	$node->append_conf('postgresql.conf', "autovacuum = off\nwal_writer_delay = '10s'\n");
	$node->start;
	$node->safe_psql('postgres',
		"CREATE EXTENSION ivf;
		 CREATE TABLE ti (id int, v vector($dims));
		 CREATE INDEX ti_idx ON ti USING ivfflat (v vector_l2_ops) WITH (lists = 5)");
	load('ti', 1, 5000, $node);
	my ($holder, $m) = park('switch', "SELECT splits FROM ivf_rebalance('ti_idx')", $node, 1);
	$node->stop('immediate');
	eval { $m->quit };
	eval { $holder->quit };
	$node->start;
	is(info($node, 'ti_idx', 'generation'), '2', '(i) after a crash, the index is at the switched generation');
	is($node->safe_psql('postgres', "SELECT splits FROM ivf_rebalance('ti_idx')"),
		'0', '(i) and has nothing left to split');
	check_index($node, 'ti', 'ti_idx', '(i) after the crash');
	$node->stop;
}

done_testing();
