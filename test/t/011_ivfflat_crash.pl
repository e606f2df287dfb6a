# ivfflat crash safety: immediate shutdowns (the postmaster and every backend
# killed with SIGQUIT, no checkpoint: crash recovery on restart) during
#
#   (a) CREATE INDEX: in k-means, while writing the lists, built but not yet
#       committed, and just after commit (wal_level replica and minimal);
#   (b) concurrent inserts from several sessions (64, 3000 and 9000
#       dimensions: one-page, two-page and five-page list groups; a new
#       five-page group takes two WAL records), three times;
#   (c) VACUUM after a big DELETE, slowed down with vacuum_cost_delay, while
#       it vacuums the index (64 and 3000 dims) and while it vacuums the
#       heap (64 dims).
#
# After every restart: ivf_check finds nothing, an index scan probing every
# list returns exactly the table's non-NULL rows, every batch a client saw
# committed is there (and no batch is there in part), VACUUM then leaves no
# dead slot and ivf_index_info's vector count equals the table's.
#
# The node runs with wal_consistency_checking = 'generic': recovery compares
# every generic WAL record's result with the page image logged beside it and
# fails on any difference, so a restart that succeeds also says the index's
# WAL replays to the very pages the primary had.
use strict;
use warnings;

use File::Spec;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IvfTest;

srand(20110);
# psql sessions die with the server: writing to them must not kill the test
$SIG{PIPE} = 'IGNORE';
my $t_all = time;

my $node = ivf_node('ivfflat_crash', q{
wal_level = replica
max_wal_senders = 2
wal_consistency_checking = 'generic'
shared_buffers = 128MB
max_wal_size = 512MB
checkpoint_timeout = 1h
autovacuum = off
max_parallel_workers_per_gather = 0
});
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my $ncrash = 0;

# Immediate stop, restart (crash recovery), and check that recovery ran and
# succeeded.
sub crash_restart
{
	my ($why) = @_;
	my $logpos = -s $node->logfile;
	my $t0 = time;
	$node->stop('immediate');
	my $ok = $node->start(fail_ok => 1);
	$ncrash++;
	my $log = substr(slurp_file($node->logfile), $logpos);
	ok($ok, "restart after an immediate stop $why")
	  or BAIL_OUT("server did not come back after an immediate stop $why:\n"
		  . join("\n", grep { /FATAL|PANIC|ERROR|inconsistent/ } split /\n/, $log));
	unlike($log, qr/inconsistent page found/, "wal_consistency_checking found no bad page ($why)");
	like($log, qr/redo done at|redo is not required/, "crash recovery ran ($why)");
	note sprintf('restart after %s: %.1fs; %s', $why, time - $t0,
		join('; ', grep { /redo (done|starts)/ } split /\n/, $log));
	return $ok;
}

sub count_rows
{
	my ($table) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM $table WHERE v IS NOT NULL");
}

# The index agrees with the table: structure sound, every non-NULL row
# reachable by a scan of all lists.
sub check_index
{
	my ($table, $index, $dims, $why) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $info = ivf_index_info($node, 'postgres', $index);
	ivf_check_clean($node, 'postgres', $index, "$why: ivf_check('$index') clean");
	my $n = count_rows($table);
	my $q = '[' . join(',', (0.5) x $dims) . ']';
	my $found = index_scan_count($node, 'postgres', $table, 'v', '<->', $q, $info->{lists});
	is($found, $n, "$why: an index scan of all lists returns every non-NULL row of $table ($n)");
	cmp_ok($info->{vectors}, '>=', $n, "$why: $index holds at least the table's $n vectors");
	note "$why: $table has $n non-NULL rows; $index: vectors=$info->{vectors} "
	  . "dead_slots=$info->{dead_slots} pages=$info->{pages} lists=$info->{lists}";
	return $info;
}

# VACUUM, then the index holds exactly the table's vectors, no dead slot.
# INDEX_CLEANUP ON: with few dead tuples VACUUM would otherwise skip the
# indexes (and leave the heap line pointers LP_DEAD).
sub vacuum_and_check
{
	my ($table, $index, $why) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
	my $info = ivf_index_info($node, 'postgres', $index);
	my $n = count_rows($table);
	is($info->{vectors}, $n, "$why: after VACUUM $index holds exactly the table's $n vectors");
	is($info->{dead_slots}, 0, "$why: after VACUUM no dead slot in $index");
	ivf_check_clean($node, 'postgres', $index, "$why: ivf_check('$index') clean after VACUUM");
	return $info;
}

# k-NN of a few stored vectors with every list probed equals a sequential
# scan (distances; the stored vector itself comes first).
sub check_exact
{
	my ($table, $lists, $why) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sql = qq{
SELECT q.id, string_agg(r.d::text, ',' ORDER BY r.d)
FROM (SELECT id, v FROM $table WHERE v IS NOT NULL ORDER BY id LIMIT 3) q
CROSS JOIN LATERAL (SELECT t.v <-> q.v AS d FROM $table t ORDER BY t.v <-> q.v LIMIT 5) r
GROUP BY q.id ORDER BY q.id};
	# every live list: the VACUUMs below may split the build's $lists lists
	# (adaptive indexes), so probe the most lists there can be
	my $idx = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; SET ivf.nprobe = 32768; $sql");
	my $seq = $node->safe_psql('postgres', "SET enable_indexscan = off; $sql");
	is($idx, $seq, "$why: nprobe = lists k-NN equals a sequential scan on $table");
	like($idx, qr/^\d+\|0,/m, "$why: a stored vector is its own nearest neighbour");
}

# ---------------------------------------------------------------------------
# (a) crashes during CREATE INDEX
# ---------------------------------------------------------------------------
my $t0 = time;
$node->safe_psql(
	'postgres', q{
CREATE TABLE big (id int PRIMARY KEY, v vector(96));
SELECT setseed(0.11);
INSERT INTO big SELECT i, ARRAY(SELECT random() FROM generate_series(1, 96) WHERE i > 0)::vector
FROM generate_series(1, 150000) i;
ANALYZE big;
});
note sprintf('(a) big: 150000 x 96 loaded in %.1fs', time - $t0);
is($node->safe_psql('postgres', 'SELECT count(DISTINCT v) FROM (SELECT v FROM big LIMIT 1000) s'),
	1000, 'generated vectors differ from row to row');

sub progress_phase
{
	my ($s) = @_;
	my $p = $s->query_safe(
		q{SELECT coalesce((SELECT phase || ' ' || tuples_done || '/' || tuples_total
		 FROM pg_stat_progress_create_index WHERE relid = 'big'::regclass), 'none')});
	return $p;
}

sub index_absent_or_valid
{
	my ($why) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $state = $node->safe_psql('postgres',
		q{SELECT coalesce((SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('big_idx')), 'absent')});
	ok($state eq 'absent' || $state eq 'true', "$why: big_idx is absent or valid (it is $state)");
	if ($state eq 'true')
	{
		ivf_check_clean($node, 'postgres', 'big_idx', "$why: committed big_idx is sound");
		$node->safe_psql('postgres', 'DROP INDEX big_idx');
	}
	return $state;
}

# (a1) during k-means (many iterations so it surely is still running)
{
	my $bg = $node->background_psql('postgres');
	my $poll = $node->background_psql('postgres');
	$bg->query_until(
		qr/started/, q{
SET ivf.kmeans_iterations = 1000;
SET ivf.kmeans_tolerance = 0;
\echo started
CREATE INDEX big_idx ON big USING ivfflat (v vector_l2_ops) WITH (lists = 300, seed = 3);
});
	my $seen = poll_until(sub { progress_phase($poll) =~ /k-means (\d+)/ && $1 >= 2 }, 120, 0.02);
	ok($seen, '(a1) CREATE INDEX reached k-means (iteration 2 or later)');
	$poll->quit;
	crash_restart('in the k-means phase of CREATE INDEX');
	eval { $bg->quit };
	is(index_absent_or_valid('(a1)'), 'absent', '(a1) the uncommitted index is gone after the crash');
}

# (a2) while writing the lists (small maintenance_work_mem: the sort spills
# and the writing phase lasts a few tenths of a second)
{
	my $bg = $node->background_psql('postgres');
	my $poll = $node->background_psql('postgres');
	$bg->query_until(
		qr/started/, q{
SET maintenance_work_mem = '4MB';
\echo started
CREATE INDEX big_idx ON big USING ivfflat (v vector_l2_ops) WITH (lists = 300, seed = 3);
});
	my $last = '';
	my $seen = poll_until(
		sub {
			my $p = progress_phase($poll);
			$last = $p unless $p eq 'none';
			return $p =~ /writing lists/ || ($last ne '' && $p eq 'none');
		},
		30, 0.005);
	note "(a2) last progress seen before the crash: $last";
	$poll->quit;
	crash_restart('while CREATE INDEX writes the lists');
	eval { $bg->quit };
	my $state = index_absent_or_valid('(a2)');
	note "(a2) after the crash big_idx is $state"
	  . ($last =~ /writing lists/ ? ' (stopped in the writing phase)' : ' (the build had finished)');
}

# (a3) built but not committed
{
	my $bg = $node->background_psql('postgres');
	$bg->query_safe(
		q{BEGIN; CREATE INDEX big_idx ON big USING ivfflat (v vector_l2_ops) WITH (lists = 300, seed = 3)});
	is( $bg->query_safe(q{SELECT count(*) FROM ivf_check('big_idx')}),
		0, '(a3) the index built inside the open transaction is sound');
	crash_restart('after CREATE INDEX, before COMMIT');
	eval { $bg->quit };
	is(index_absent_or_valid('(a3)'), 'absent', '(a3) the uncommitted index is gone after the crash');
}

# (a4) committed build, then crash: recovered from WAL (log_newpage_range),
# with wal_level = replica and then minimal (no WAL, file synced at commit).
my $knn_big = q{
SET enable_seqscan = off; SET ivf.nprobe = 10;
SELECT q.id, string_agg(r.id || ':' || r.d, ',' ORDER BY r.d, r.id)
FROM (SELECT id, v FROM big WHERE id IN (7, 1234, 77777, 149999)) q
CROSS JOIN LATERAL (SELECT b.id, b.v <-> q.v AS d FROM big b ORDER BY b.v <-> q.v LIMIT 10) r
GROUP BY q.id ORDER BY q.id};
for my $wal_level ('replica', 'minimal')
{
	if ($wal_level eq 'minimal')
	{
		$node->append_conf('postgresql.conf', "wal_level = minimal\nmax_wal_senders = 0\n");
		$node->restart;
		is($node->safe_psql('postgres', 'SHOW wal_level'), 'minimal', '(a4) now wal_level = minimal');
	}
	$node->safe_psql('postgres',
		'CREATE INDEX big_idx ON big USING ivfflat (v vector_l2_ops) WITH (lists = 300, seed = 3)');
	my $before = $node->safe_psql('postgres', $knn_big);
	my $info0 = ivf_index_info($node, 'postgres', 'big_idx');
	is($info0->{vectors}, 150000, "(a4, $wal_level) big_idx holds every row");
	crash_restart("right after a committed CREATE INDEX (wal_level = $wal_level)");
	is( $node->safe_psql('postgres', q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_idx'::regclass}),
		't', "(a4, $wal_level) the committed index survived the crash and is valid");
	ivf_check_clean($node, 'postgres', 'big_idx', "(a4, $wal_level) ivf_check clean after recovery");
	my $info1 = ivf_index_info($node, 'postgres', 'big_idx');
	is_deeply($info1, $info0, "(a4, $wal_level) ivf_index_info unchanged by the crash");
	is($node->safe_psql('postgres', $knn_big), $before,
		"(a4, $wal_level) k-NN results unchanged by the crash");
	like(
		(uses_index($node, 'postgres', 'SET enable_seqscan = off;',
			q{SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 1}, 'big_idx'))[1]
		  // '',
		qr/big_idx/, "(a4, $wal_level) EXPLAIN shows an index scan on big_idx");

	# inserts after the build are WAL-logged either way
	$node->safe_psql('postgres',
		q{INSERT INTO big SELECT 200000 + i, ARRAY(SELECT random() FROM generate_series(1, 96) WHERE i > 0)::vector FROM generate_series(1, 500) i}
	);
	crash_restart("after inserts into a freshly built index (wal_level = $wal_level)");
	check_index('big', 'big_idx', 96, "(a4, $wal_level) after inserts and a crash");

	# rebuilding works, and the same seed gives the same index
	$node->safe_psql('postgres', 'DELETE FROM big WHERE id > 150000; VACUUM big; REINDEX INDEX big_idx');
	ivf_check_clean($node, 'postgres', 'big_idx', "(a4, $wal_level) REINDEX after the crash: sound");
	is($node->safe_psql('postgres', $knn_big), $before,
		"(a4, $wal_level) REINDEX with the same seed gives the same k-NN results");
	$node->safe_psql('postgres', 'DROP INDEX big_idx');
}
$node->append_conf('postgresql.conf', "wal_level = replica\nmax_wal_senders = 2\n");
$node->restart;
$node->safe_psql('postgres', 'DROP TABLE big');
note sprintf('(a) done in %.1fs', time - $t0);

# ---------------------------------------------------------------------------
# (b) concurrent inserts, immediate stop mid-way
# ---------------------------------------------------------------------------
$t0 = time;
my %btab = (
	c64 => { dims => 64, init => 20000, lists => 40, batch => 100, sessions => 3, want => 30 },
	c3000 => { dims => 3000, init => 400, lists => 8, batch => 4, sessions => 2, want => 10 },
	c9000 => { dims => 9000, init => 60, lists => 3, batch => 2, sessions => 1, want => 4 },
);
for my $t (sort keys %btab)
{
	my $c = $btab{$t};
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, r int, s int, b int, v vector($c->{dims}));
SELECT setseed(0.2);
INSERT INTO $t SELECT i, 0, 0, 0, ARRAY(SELECT random() FROM generate_series(1, $c->{dims}) WHERE i > 0)::vector
FROM generate_series(1, $c->{init}) i;
CREATE INDEX ${t}_idx ON $t USING ivfflat (v vector_l2_ops) WITH (lists = $c->{lists});
});
	my $info = ivf_index_info($node, 'postgres', "${t}_idx");
	note "(b) $t: $c->{init} rows x $c->{dims}: vectors_per_group=$info->{vectors_per_group} pages=$info->{pages}";
}
is(ivf_index_info($node, 'postgres', 'c3000_idx')->{vectors_per_group},
	1, '(b) c3000: a 3000-dim group is one vector on two pages');

for my $round (1, 2, 3)
{
	my @sess;
	for my $t (sort keys %btab)
	{
		my $c = $btab{$t};
		for my $s (1 .. $c->{sessions})
		{
			my $script = "$tmp/ins_${t}_${round}_$s.sql";
			open(my $fh, '>', $script) or die "$script: $!";
			print $fh 'SELECT setseed(' . sprintf('%.3f', rand()) . ");\n";
			for my $b (1 .. 2000)
			{
				my $id0 = $round * 100_000_000 + $s * 10_000_000 + $b * 1000;
				print $fh "INSERT INTO $t (id, r, s, b, v) SELECT $id0 + i, $round, $s, $b, "
				  . "CASE WHEN i % 37 = 0 THEN NULL ELSE ARRAY(SELECT random() FROM "
				  . "generate_series(1, $c->{dims}) WHERE i > 0)::vector END "
				  . "FROM generate_series(1, $c->{batch}) i;\n\\echo committed $round $s $b\n";
			}
			close $fh;
			my $out = "$tmp/ins_${t}_${round}_$s.out";
			push @sess,
			  {
				table => $t,
				s => $s,
				out => $out,
				h => start_psql_script($node, 'postgres', $script, $out)
			  };
		}
	}
	# let them commit a good number of batches, then crash
	my $enough = poll_until(
		sub {
			my $ok = 1;
			for my $t (keys %btab)
			{
				my $n = $node->safe_psql('postgres',
					"SELECT count(DISTINCT (s, b)) FROM $t WHERE r = $round");
				$ok = 0 if $n < $btab{$t}{want};
			}
			return $ok;
		},
		120, 0.2);
	ok($enough, "(b) round $round: the insert sessions committed batches");
	crash_restart("during concurrent inserts (round $round)");
	finish_psql_script($_->{h}) for @sess;

	for my $t (sort keys %btab)
	{
		my $c = $btab{$t};
		my %committed;
		for my $se (grep { $_->{table} eq $t } @sess)
		{
			my $n = 0;
			for my $line (split /\n/, slurp_file($se->{out}))
			{
				if ($line =~ /^committed (\d+) (\d+) (\d+)$/)
				{
					$committed{"$1 $2 $3"} = 1;
					$n++;
				}
			}
			my $err = -s "$se->{out}.err" ? slurp_file("$se->{out}.err") : '';
			unlike($err, qr/ERROR/, "(b) round $round: $t session $se->{s}: no SQL error before the crash")
			  or diag($err);
			cmp_ok($n, '>', 0, "(b) round $round: $t session $se->{s} saw $n batches commit");
		}
		my %have = map { my @f = split /\|/; ("$f[0] $f[1] $f[2]" => $f[3]) } split /\n/,
		  $node->safe_psql('postgres',
			"SELECT r, s, b, count(*) FROM $t WHERE r = $round GROUP BY r, s, b");
		my @lost = grep { !defined $have{$_} || $have{$_} != $c->{batch} } sort keys %committed;
		is(scalar(@lost), 0,
			"(b) round $round: $t: all " . scalar(keys %committed) . ' batches reported committed are there')
		  or diag("missing or short: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
		my @partial = grep { $have{$_} != $c->{batch} } keys %have;
		is(scalar(@partial), 0, "(b) round $round: $t: no batch is there in part");
		note "(b) round $round: $t: " . scalar(keys %have) . ' batches in the table, '
		  . scalar(keys %committed) . ' reported committed';

		check_index($t, "${t}_idx", $c->{dims}, "(b) round $round: $t after the crash");
		check_exact($t, $c->{lists}, "(b) round $round");
		# new inserts go in and are found
		my $probe = '[' . join(',', map { 3 + ($_ + $round) % 7 } 1 .. $c->{dims}) . ']';
		$node->safe_psql('postgres', "INSERT INTO $t VALUES (-$round, $round, 0, 0, '$probe')");
		is( $node->safe_psql('postgres',
				"SET enable_seqscan = off; SELECT id FROM $t ORDER BY v <-> '$probe' LIMIT 1"),
			-$round,
			"(b) round $round: $t: a row inserted after recovery is found by the index");
		vacuum_and_check($t, "${t}_idx", "(b) round $round: $t");
	}
}
note sprintf('(b) done in %.1fs', time - $t0);

# ---------------------------------------------------------------------------
# (c) crash during VACUUM after a big DELETE
# ---------------------------------------------------------------------------
$t0 = time;
my %vtab = (
	v64 => { dims => 64, rows => 40000, lists => 40 },
	v3000 => { dims => 3000, rows => 1500, lists => 10 },
);
for my $t (sort keys %vtab)
{
	my $c = $vtab{$t};
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, v vector($c->{dims}));
SELECT setseed(0.3);
INSERT INTO $t SELECT i, ARRAY(SELECT random() FROM generate_series(1, $c->{dims}) WHERE i > 0)::vector
FROM generate_series(1, $c->{rows}) i;
CREATE INDEX ${t}_idx ON $t USING ivfflat (v vector_l2_ops) WITH (lists = $c->{lists});
});
	# (v3000's heap is a few pages of TOAST pointers: its heap phase is too
	# short to catch, so all three rounds crash in its index phase)
	my @phases =
	  $c->{dims} > 2000
	  ? ('vacuuming indexes', 'vacuuming indexes', 'vacuuming indexes')
	  : ('vacuuming indexes', 'vacuuming heap', 'vacuuming indexes');
	my @deletes = ('id % 3 <> 0', 'id % 5 = 0', 'id % 7 = 1');
	for my $round (0 .. $#phases)
	{
		my $phase = $phases[$round];
		my $del = $node->safe_psql('postgres', "WITH d AS (DELETE FROM $t WHERE $deletes[$round] RETURNING 1) SELECT count(*) FROM d");
		my $script = "$tmp/vac_${t}_$round.sql";
		open(my $fh, '>', $script) or die "$script: $!";
		print $fh "SET vacuum_cost_delay = '1ms';\nSET vacuum_cost_limit = 1;\nVACUUM $t;\n\\echo vacuumed\n";
		close $fh;
		my $out = "$tmp/vac_${t}_$round.out";
		my $h = start_psql_script($node, 'postgres', $script, $out);
		my $seen = poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = '$t'::regclass AND phase = '$phase'");
			},
			120, 0.02);
		ok($seen, "(c) $t round $round: VACUUM reached '$phase' after deleting $del rows");
		my $pause = 0.1 + rand(0.5);
		sleep($pause);
		my $still = $node->safe_psql('postgres',
			"SELECT phase FROM pg_stat_progress_vacuum WHERE relid = '$t'::regclass");
		note sprintf("(c) $t round $round: crashing %.2fs into '%s' (now: '%s')", $pause, $phase, $still);
		crash_restart("during VACUUM of $t ($phase)");
		finish_psql_script($h);
		unlike(slurp_file($out), qr/vacuumed/, "(c) $t round $round: the VACUUM was interrupted");
		check_index($t, "${t}_idx", $c->{dims}, "(c) $t round $round after the crash");
		check_exact($t, $c->{lists}, "(c) $t round $round");
	}
	# the next VACUUM finishes the work
	my $info = vacuum_and_check($t, "${t}_idx", "(c) $t");
	# freed slots are reused by inserts, and everything still adds up
	$node->safe_psql('postgres',
		"INSERT INTO $t SELECT 100000 + i, ARRAY(SELECT random() FROM generate_series(1, $c->{dims}) WHERE i > 0)::vector FROM generate_series(1, 300) i"
	);
	my $info2 = check_index($t, "${t}_idx", $c->{dims}, "(c) $t after refilling");
	cmp_ok($info2->{pages}, '<=', $info->{pages} + ($c->{dims} > 2000 ? 0 : 5),
		"(c) $t: inserts after VACUUM refill freed slots (pages $info->{pages} -> $info2->{pages})");
	crash_restart("after refilling $t");
	check_index($t, "${t}_idx", $c->{dims}, "(c) $t after refilling and a crash");
	vacuum_and_check($t, "${t}_idx", "(c) $t final");
}
note sprintf('(c) done in %.1fs', time - $t0);

note sprintf('%d crash restarts, total %.1fs', $ncrash, time - $t_all);
$node->stop;
done_testing();
