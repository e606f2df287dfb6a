# Inserts against frozen groups and closed lists (src/README "Inserts"),
# without the maintainer: the states an operation leaves are written by
# hand into the index file with the server stopped, as 028 does, then
# taken back.  One list of 500-dimension vectors without codes, so that a
# group is a page of a few vectors and the list a chain of many groups.
#
#   (a) groups with free slots frozen in the middle of a list whose entry
#       carries a pending dead stamp (generation + 1): inserts skip them,
#       fill the first unfrozen group with room, and append after the full
#       unfrozen tail; the frozen groups keep their rows; ivf_check reports
#       no problem but a NOTICE of an operation in progress; the same
#       frozen group with the stamp reset is a problem;
#   (b) an abandoned operation: every group frozen, tail included, the
#       dead stamp still pending and the switch lock free: an insert
#       appends one unfrozen group after the frozen tail and the next
#       insert fills it;
#   (c) IVF_LIST_OVERFULL: set by the insert that appends a group taking
#       the list's capacity past the meta page's split bound, not before,
#       and never on an index built with adaptive = off, nor while the
#       bound is 0 (unset, as in (a) and (b));
#   (d) an empty list carrying a pending dead stamp is closed by the
#       stamp (no tail to freeze): abandoned, its first group is created;
#   (e) the only list retired at the generation, nothing replacing it:
#       the insert fails with an error (the view has no live list) rather
#       than choosing again forever.  (The insert's own guard against a
#       directory that contradicts a cache of the same generation cannot be
#       reached from outside: the cache is built from that directory.)
#   (f) ivf_check on a retired list (dead at the generation, frozen whole,
#       one live list fewer in the meta page): no problem, a NOTICE that
#       counts it, and as past every transaction's horizon only when its
#       retire_xid is old (ivf_full_xid_recyclable); a deleted page in its
#       chain is counted, not reported.
#
# After each case the patches are taken back and nothing is lost: every
# row is found by an index scan and ivf_check is clean.  The node runs with
# wal_consistency_checking = 'generic' and crash-restarts after the
# inserts, so redo of each record is compared with the page it logged.
# No data checksums (initdb's default): patched pages would fail them.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('frozen');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
jit = off
wal_consistency_checking = 'generic'
});
$node->start;

if ($node->safe_psql('postgres', 'SHOW data_checksums') ne 'off')
{
	plan skip_all => 'the test cluster has data checksums on';
}

my $blcksz = $node->safe_psql('postgres', 'SHOW block_size');

# src/core/ivfformat.h: page contents at MAXALIGN(SizeOfPageHeaderData) = 24;
# IvfMetaPageData: generation at 8, flags (uint16) at 14, directory_start
# at 64, vecs_per_group at 80, split_bound at 112; IvfListEntry (64 bytes):
# head 0, tail 4, insert 8, ngroups 12, born 24, dead 28, flags (uint16) 54;
# IvfPageOpaqueData at BLCKSZ - 16: next 0, list 4, nvec (uint16) 8, flags
# (uint16) 10.
my $contents = 24;
my $special = $blcksz - 16;
my $GEN_NEVER = 0xFFFFFFFF;
my $PAGE_LIST = 0x0008;
my $PAGE_FROZEN = 0x0100;
my $LIST_OVERFULL = 0x0001;
my $META_ADAPTIVE = 0x0010;

sub u32 { my ($f, $off) = @_; return unpack('L', read_file_bytes($f, $off, 4)); }
sub u16 { my ($f, $off) = @_; return unpack('S', read_file_bytes($f, $off, 2)); }

sub meta
{
	my ($f) = @_;
	die "$f is not an ivf index" unless u32($f, $contents) == 0x49564631;
	return {
		generation => u32($f, $contents + 8),
		flags => u16($f, $contents + 14),
		dirstart => u32($f, $contents + 64),
		vpg => u32($f, $contents + 80),
		split_bound => u32($f, $contents + 112),
	};
}

# list slot $slot's entry: its fields and its file offset
sub entry
{
	my ($f, $slot) = @_;
	my $off = meta($f)->{dirstart} * $blcksz + $contents + 64 * $slot;
	return {
		off => $off,
		head => u32($f, $off),
		tail => u32($f, $off + 4),
		insert => u32($f, $off + 8),
		ngroups => u32($f, $off + 12),
		born => u32($f, $off + 24),
		dead => u32($f, $off + 28),
		flags => u16($f, $off + 54),
	};
}

sub set_dead
{
	my ($f, $slot, $dead) = @_;
	write_file_bytes($f, entry($f, $slot)->{off} + 28, pack('L', $dead));
	return;
}

# the chain of list slot $slot: [block, nvec, flags, next] per group
sub chain
{
	my ($f, $slot) = @_;
	my @groups;
	my $blk = entry($f, $slot)->{head};
	while ($blk != 0xFFFFFFFF)
	{
		my $o = $blk * $blcksz + $special;
		my @g = ($blk, u16($f, $o + 8), u16($f, $o + 10), u32($f, $o));
		die "block $blk is not a list head" unless $g[2] & $PAGE_LIST;
		push @groups, \@g;
		die "chain of slot $slot does not end" if @groups > 100000;
		$blk = $g[3];
	}
	return @groups;
}

sub set_frozen
{
	my ($f, $blk, $on) = @_;
	my $o = $blk * $blcksz + $special + 10;
	my $flags = u16($f, $o);
	$flags = $on ? ($flags | $PAGE_FROZEN) : ($flags & ~$PAGE_FROZEN);
	write_file_bytes($f, $o, pack('S', $flags));
	return;
}

# ivf_check's rows and its NOTICEs
sub check_index
{
	my ($index) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM ivf_check('$index')");
	die "ivf_check('$index') failed: $err" if $rc != 0;
	return ([ $out eq '' ? () : split(/\n/, $out) ], $err);
}

my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';

# each row's own vector finds it first through the index
sub rows_found
{
	my ($table, $index, @ids) = @_;
	my $missing = 0;
	for my $id (@ids)
	{
		my $got = $node->safe_psql('postgres',
			"$noseq SELECT id FROM $table ORDER BY v <-> (SELECT v FROM $table WHERE id = $id), id LIMIT 1");
		$missing++ if $got ne $id;
	}
	return $missing == 0;
}

# every row of the table, through the index with every list probed
# ($dims-dimension vectors, $lists lists; by default t's and e's 500 and 1)
sub all_rows_indexed
{
	my ($table, $name, $dims, $lists) = @_;
	$dims //= 500;
	$lists //= 1;
	is(index_scan_count($node, 'postgres', $table, 'v', '<->', '[' . join(',', (0) x $dims) . ']', $lists),
		$node->safe_psql('postgres', "SELECT count(*) FROM $table"), $name);
	return;
}

# crash and replay what the inserts logged; redo is compared with each image
my $log_at = 0;

sub crash_replay
{
	my ($why) = @_;
	$node->stop('immediate');
	$node->start;
	my $log = slurp_file($node->logfile, $log_at);
	$log_at = -s $node->logfile;
	like($log, qr/redo done/, "($why) the inserts were replayed");
	unlike($log, qr/inconsistent page found/, "($why) redo matches every page the inserts logged");
	return;
}

sub insert_rows
{
	my ($table, $from, $n) = @_;
	my $to = $from + $n - 1;
	$node->safe_psql('postgres', qq{
INSERT INTO $table SELECT i, ARRAY(SELECT sin(i * 0.37 + j * 0.11)::real
  FROM generate_series(1, 500) j)::vector(500)
FROM generate_series($from, $to) i});
	return ($from .. $to);
}

$node->safe_psql('postgres', qq{
CREATE EXTENSION ivf;
CREATE TABLE t (id int PRIMARY KEY, v vector(500));
});
insert_rows('t', 1, 40);
$node->safe_psql('postgres', q{
CREATE INDEX t_i ON t USING ivfflat (v vector_l2_ops) WITH (lists = 1, prefilter = off);
CREATE INDEX t_fixed ON t USING ivfflat (v vector_l2_ops) WITH (lists = 1, prefilter = off, adaptive = off);
});
my $f = relation_file($node, 'postgres', 't_i');
my $ffixed = relation_file($node, 'postgres', 't_fixed');

# (a) free slots in the middle, then two of those groups frozen
$node->safe_psql('postgres', 'DELETE FROM t WHERE id IN (9, 10, 21, 33); VACUUM t');
$node->stop;
my $m = meta($f);
my $vpg = $m->{vpg};
ok($vpg >= 2 && $vpg <= 8, "a group holds a few 500-dimension vectors ($vpg)");
is($m->{generation}, 1, 'the index is at generation 1');
ok($m->{flags} & $META_ADAPTIVE, 't_i is adaptive');
ok(!(meta($ffixed)->{flags} & $META_ADAPTIVE), 't_fixed is not');
# VACUUM's maintenance (ivfmaintain.c) recorded the bound: 36 rows in one
# list make a target of 64 rows (the floor), split above 128
is($m->{split_bound}, 128, 'VACUUM set the split bound to twice the target size');
my @before = chain($f, 0);
my @room = grep { $_->[1] < $vpg } @before;
ok(@room >= 3 && $room[-1][3] != 0xFFFFFFFF,
	'VACUUM left at least three groups with free slots, none of them the tail')
  or diag(explain \@before);
my @frozen = @room[ 0 .. $#room - 1 ];
my $open = $room[-1];
set_frozen($f, $_->[0], 1) for @frozen;
set_dead($f, 0, 2);
$node->start;

my $n = ($vpg - $open->[1]) + 1;
my @new = insert_rows('t', 1001, $n);
crash_replay('a');
$node->stop;
{
	my @after = chain($f, 0);
	my %nvec = map { $_->[0] => $_->[1] } @after;
	is_deeply([ map { $nvec{ $_->[0] } } @frozen ], [ map { $_->[1] } @frozen ],
		'(a) the frozen groups took no row');
	is($nvec{ $open->[0] }, $vpg, '(a) the first unfrozen group with room was filled');
	is(scalar(@after), scalar(@before) + 1, '(a) one group was appended after the full tail');
	is($after[-1][1], 1, '(a) the new group holds the last row');
	ok(!($after[-1][2] & $PAGE_FROZEN), '(a) the new group is not frozen');
	is(entry($f, 0)->{flags}, 0, '(a) below the split bound: the list is not marked overfull');
}
$node->start;
ok(rows_found('t', 't_i', @new), '(a) every new row is found through the index');
{
	my ($rows, $err) = check_index('t_i');
	is_deeply($rows, [], '(a) ivf_check: frozen groups in a list being replaced are no problem');
	like($err, qr/stamped above generation 1: an operation in progress or abandoned/,
		'(a) ivf_check notices the pending stamp');
}

# the same frozen groups with the stamp reset: a problem
$node->stop;
set_dead($f, 0, $GEN_NEVER);
$node->start;
{
	my ($rows, $err) = check_index('t_i');
	is(scalar(@$rows), scalar(@frozen), '(a) frozen groups in a list no operation replaces: one problem each')
	  or diag(join("\n", @$rows));
	like($rows->[0] // '', qr/^list 0: block $frozen[0][0] is frozen, but no operation replaces the list \(dead never\)$/,
		'(a) the problem names the list and the block');
}
$node->stop;
set_frozen($f, $_->[0], 0) for @frozen;
$node->start;
{
	my ($rows, $err) = check_index('t_i');
	is_deeply($rows, [], '(a) unfrozen again: no problem');
	unlike($err, qr/NOTICE/, '(a) unfrozen again: no notice');
}
all_rows_indexed('t', '(a) after unfreezing every row is indexed');

# (b) an abandoned operation: the whole list frozen, its stamp pending
$node->stop;
@before = chain($f, 0);
set_frozen($f, $_->[0], 1) for @before;
set_dead($f, 0, 2);
$node->start;
@new = insert_rows('t', 2001, 1);
crash_replay('b');
$node->stop;
{
	my @after = chain($f, 0);
	is(scalar(@after), scalar(@before) + 1, '(b) one group appended after the frozen tail');
	is($after[-2][0], $before[-1][0], '(b) after the old tail');
	is_deeply([ map { $_->[1] } @after[ 0 .. $#before ] ], [ map { $_->[1] } @before ],
		'(b) the frozen groups took no row');
	ok(!($after[-1][2] & $PAGE_FROZEN) && $after[-1][1] == 1, '(b) the new group is unfrozen and holds the row');
	is(entry($f, 0)->{tail}, $after[-1][0], '(b) the directory names it as the tail');
}
$node->start;
push @new, insert_rows('t', 2002, 1);
$node->stop;
{
	my @after = chain($f, 0);
	is(scalar(@after), scalar(@before) + 1, '(b) the next insert appended nothing');
	is($after[-1][1], 2, '(b) it filled the new group');
}
$node->start;
ok(rows_found('t', 't_i', @new), '(b) the rows are found through the index');
{
	my ($rows, $err) = check_index('t_i');
	is_deeply($rows, [], '(b) ivf_check: no problem');
	like($err, qr/an operation in progress or abandoned/, '(b) ivf_check notices the abandoned stamp');
}
$node->stop;
set_frozen($f, $_->[0], 0) for @before;
set_dead($f, 0, $GEN_NEVER);
$node->start;
ivf_check_clean($node, 'postgres', 't_i', '(b) taken back: no problem');
all_rows_indexed('t', '(b) taken back: every row is indexed');

# (c) the split bound: the group that takes the capacity past it marks the list
$node->stop;
@before = chain($f, 0);
{
	my $e = entry($f, 0);
	my $free = 0;
	my $past = 0;
	for my $g (@before)
	{
		$past ||= $g->[0] == $e->{insert};
		$free += $vpg - $g->[1] if $past;
	}
	my $bound = (scalar(@before) + 1) * $vpg;
	write_file_bytes($f, $contents + 112, pack('L', $bound));
	write_file_bytes($ffixed, $contents + 112, pack('L', 1));
	$node->start;
	insert_rows('t', 3001, $free + 1);
	$node->stop;
	is(scalar(chain($f, 0)), scalar(@before) + 1, '(c) the rows filled the list and appended a group');
	is(entry($f, 0)->{flags} & $LIST_OVERFULL, 0, "(c) capacity at the bound ($bound): not overfull");
	$node->start;
	insert_rows('t', 4001, $vpg);
	crash_replay('c');
	$node->stop;
	is(scalar(chain($f, 0)), scalar(@before) + 2, '(c) another group appended');
	is(entry($f, 0)->{flags} & $LIST_OVERFULL, $LIST_OVERFULL, '(c) capacity past the bound: overfull');
	is(entry($ffixed, 0)->{flags}, 0, '(c) adaptive = off: never marked');
	write_file_bytes($f, $contents + 112, pack('L', 0));
	write_file_bytes($ffixed, $contents + 112, pack('L', 0));
}
$node->start;
ivf_check_clean($node, 'postgres', $_, "(c) $_: no problem") for qw(t_i t_fixed);
all_rows_indexed('t', '(c) every row is indexed');

# (d) an empty list stamped dead, abandoned: the stamp closed it
$node->safe_psql('postgres', q{
CREATE TABLE e (id int PRIMARY KEY, v vector(500));
CREATE INDEX e_i ON e USING ivfflat (v vector_l2_ops) WITH (prefilter = off);
});
my $fe = relation_file($node, 'postgres', 'e_i');
$node->stop;
is(entry($fe, 0)->{head}, 0xFFFFFFFF, '(d) the index of an empty table has an empty list');
set_dead($fe, 0, 2);
$node->start;
@new = insert_rows('e', 1, 1);
crash_replay('d');
$node->stop;
is(entry($fe, 0)->{ngroups}, 1, '(d) the insert created the first group');
$node->start;
ok(rows_found('e', 'e_i', @new), '(d) the row is found through the index');
{
	my ($rows, $err) = check_index('e_i');
	is_deeply($rows, [], '(d) ivf_check: no problem');
	like($err, qr/an operation in progress or abandoned/, '(d) ivf_check notices the stamp');
}
$node->stop;
set_dead($fe, 0, $GEN_NEVER);

# (e) the only list retired at the cache's own generation: an error, no loop
set_dead($fe, 0, 1);
$node->start;
{
	my ($rc, $out, $err) = $node->psql('postgres',
		q{INSERT INTO e VALUES (2, array_fill(1, ARRAY[500])::vector(500))});
	isnt($rc, 0, '(e) an insert into a list not live at the generation fails');
	like($err, qr/index "e_i" has 0 lists live at generation 1, its meta page says 1/, '(e) and says why');
}
$node->stop;
set_dead($fe, 0, $GEN_NEVER);
$node->start;
ivf_check_clean($node, 'postgres', 'e_i', '(e) taken back: no problem');
all_rows_indexed('e', '(e) every row of e is indexed');

# (f) a retired list, as ivf_check sees it
$node->safe_psql('postgres', q{
CREATE TABLE r (id int PRIMARY KEY, v vector(8));
INSERT INTO r SELECT i, ARRAY(SELECT ((i % 2) * 100 + sin(i * 3 + j))::real
  FROM generate_series(1, 8) j)::vector(8)
FROM generate_series(1, 600) i;
CREATE INDEX r_i ON r USING ivfflat (v vector_l2_ops) WITH (lists = 2, prefilter = off);
});
my $fr = relation_file($node, 'postgres', 'r_i');
my $future = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint + 1000000');
$node->stop;
my @rchain = chain($fr, 0);
ok(@rchain >= 2, '(f) list 0 of r_i has several groups');
set_frozen($fr, $_->[0], 1) for @rchain;
set_dead($fr, 0, 1);
write_file_bytes($fr, $contents + 20, pack('L', 1));    # nlists
write_file_bytes($fr, entry($fr, 0)->{off} + 32, pack('Q', 3));    # retire_xid
$node->start;
{
	my ($rows, $err) = check_index('r_i');
	is_deeply($rows, [], '(f) a retired list frozen whole: no problem');
	like($err, qr/holds 1 retired lists \(1 of them past every transaction's horizon now\) and 0 deleted pages/,
		'(f) it is counted, and an old retire_xid is past the horizon');
	unlike($err, qr/in progress or abandoned/, '(f) no operation is reported');
}
$node->stop;
write_file_bytes($fr, entry($fr, 0)->{off} + 32, pack('Q', $future));
# the head of its first group deleted, as recycling leaves it midway
write_file_bytes($fr, $rchain[0][0] * $blcksz + $special + 10, pack('S', 0x0200));
$node->start;
{
	my ($rows, $err) = check_index('r_i');
	is_deeply($rows, [], '(f) a deleted page in a retired list: no problem');
	like($err, qr/holds 1 retired lists \(0 of them past every transaction's horizon now\) and 1 deleted pages/,
		'(f) a future retire_xid is not past the horizon; the deleted page is counted');
}
$node->stop;
write_file_bytes($fr, $rchain[0][0] * $blcksz + $special + 10, pack('S', $rchain[0][2]));
write_file_bytes($fr, entry($fr, 0)->{off} + 32, pack('Q', 0));
write_file_bytes($fr, $contents + 20, pack('L', 2));
set_dead($fr, 0, $GEN_NEVER);
set_frozen($fr, $_->[0], 0) for @rchain;
$node->start;
{
	my ($rows, $err) = check_index('r_i');
	is_deeply($rows, [], '(f) taken back: no problem');
	unlike($err, qr/NOTICE/, '(f) taken back: no notice');
}
all_rows_indexed('r', '(f) every row of r is indexed', 8, 2);

$node->stop;
done_testing();
