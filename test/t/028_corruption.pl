# ivf_check and the meta page's version check against an index corrupted on
# disk, the way contrib/amcheck's TAP tests do it: stop the server, overwrite
# bytes of the index file at offsets computed from the page layout
# (src/core/ivfformat.h, src/README "Page types"), start it again.
#
#   (a) a list's radius set to 0, -1 or NaN in its directory entry:
#       ivf_check names the list, the stored radius and the distance of its
#       farthest member (code layout, plain layout, two-page groups);
#   (b) the meta page's format version set to 1: scans, inserts and
#       ivf_check fail with the "format version 1 ... REINDEX" error, and
#       REINDEX makes the index usable again;
#   (c) sound indexes after inserts of far outliers (raising radii), deletes
#       and VACUUM: ivf_check reports nothing;
#   (d) formats 3 and 2 (before list slots, and before the meta page's
#       element type): an index built as format 3 (ivf.build_format = 3,
#       the tests' switch) is read, checked and inserted into as before;
#       the same index written as version 2 (its element type field zero,
#       as version 2 left it) too; a version 2 meta page naming another
#       element type, or a version 3 one naming an unknown type, is
#       refused;
#   (e) format 4's list slots: a slot stamped dead at the generation (a
#       retired list that is not frozen, one live list fewer than nlists), a
#       slot whose incarnation no longer matches its pages' list id, a
#       centroid row past its page, and a slot past the entries written
#       are each reported by ivf_check or refused by the scan; a free slot
#       beside the live lists changes nothing; the index reads as before
#       once restored.
#
# The node runs without data checksums (initdb's default): with them the
# overwritten pages would fail their checksum before ivf saw them.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IvfTest;

my $node = PostgreSQL::Test::Cluster->new('corruption');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\njit = off\n");
$node->start;

if ($node->safe_psql('postgres', 'SHOW data_checksums') ne 'off')
{
	plan skip_all => 'the test cluster has data checksums on';
}

my $blcksz = $node->safe_psql('postgres', 'SHOW block_size');

# Page layout (src/core/ivfformat.h): page contents start after the page header,
# MAXALIGN(SizeOfPageHeaderData) = 24 bytes.  IvfMetaPageData: magic at 0,
# version at 4, directory_start (format 4: the first directory page, the
# others following it as in format 3) at 64.  IvfListEntry (64 bytes; format
# 3: 24): head at 0, radius (float4) at 20.
my $contents = 24;
my $meta_version = $contents + 4;
my $meta_dirstart = $contents + 64;
my $meta_elem = $contents + 84;
my $entry_size = 64;
my $entry_radius = 20;
my $entry_born = 24;
my $entry_dead = 28;
my $entry_crow = 48;
my $entry_incarnation = 52;
my $meta_nslots = $contents + 88;

# (file offset of list's radius, radius) for the first $n lists that have a
# group and a positive radius; the server must be stopped.
sub nonempty_lists
{
	my ($file, $n) = @_;
	my ($magic) = unpack('L', read_file_bytes($file, $contents, 4));
	die sprintf('%s: magic 0x%08x is not ivf\'s', $file, $magic)
	  unless $magic == 0x49564631;
	my ($dirstart) = unpack('L', read_file_bytes($file, $meta_dirstart, 4));
	my @found;
	for (my $list = 0; @found < $n && $list < 64; $list++)
	{
		my $off = $dirstart * $blcksz + $contents + $list * $entry_size;
		my ($head) = unpack('L', read_file_bytes($file, $off, 4));
		my ($radius) = unpack('f', read_file_bytes($file, $off + $entry_radius, 4));
		push @found, [ $list, $off + $entry_radius, $radius ]
		  if $head != 0xFFFFFFFF && $radius > 0;
	}
	die "$file: fewer than $n lists with members" unless @found == $n;
	return @found;
}

sub check_rows
{
	my ($index) = @_;
	my $out = $node->safe_psql('postgres', "SELECT * FROM ivf_check('$index')");
	return $out eq '' ? () : split(/\n/, $out);
}

$node->safe_psql('postgres', 'CREATE EXTENSION ivf');

# four clusters of 8-dimensional rows; 3000-dimensional rows in two clusters
# (two pages per group)
$node->safe_psql(
	'postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v vector(8));
INSERT INTO t SELECT i, ARRAY(SELECT ((i % 4) * 10 + sin(i * 7 + j))::real
  FROM generate_series(1, 8) j)::vector(8)
FROM generate_series(1, 3000) i;
CREATE INDEX t_l2 ON t USING ivfflat (v vector_l2_ops) WITH (lists = 4);
CREATE INDEX t_ip ON t USING ivfflat (v vector_ip_ops) WITH (lists = 4, prefilter = off);
-- adaptive = off: (e) edits its 4 slots, which VACUUM t must not split
CREATE INDEX t_cos ON t USING ivfflat (v vector_cosine_ops) WITH (lists = 4, adaptive = off);
CREATE TABLE w (id int PRIMARY KEY, v vector(3000));
INSERT INTO w SELECT i, ARRAY(SELECT ((i % 2) * 10 + sin(i * 3 + j))::real
  FROM generate_series(1, 3000) j)::vector(3000)
FROM generate_series(1, 24) i;
CREATE INDEX w_l2 ON w USING ivfflat (v vector_l2_ops) WITH (lists = 2);
});
is(ivf_index_info($node, 'postgres', 'w_l2')->{vectors_per_group},
	'1', 'w_l2: one 3000-dimension vector per two-page group');

my @indexes = qw(t_l2 t_ip t_cos w_l2);

# (c) inserts far from every centroid raise the radii; VACUUM keeps them
$node->safe_psql(
	'postgres', q{
INSERT INTO t SELECT 10000 + i, ARRAY(SELECT (1000 * i * (-1) ^ (i + j))::real
  FROM generate_series(1, 8) j)::vector(8)
FROM generate_series(1, 6) i;
INSERT INTO w SELECT 100 + i, array_fill((500 * i)::real, ARRAY[3000])::vector(3000)
FROM generate_series(1, 2) i;
DELETE FROM t WHERE id % 5 = 0 OR id = 10001;
DELETE FROM w WHERE id % 3 = 0 OR id = 101;
});
$node->safe_psql('postgres', 'VACUUM t');
$node->safe_psql('postgres', 'VACUUM w');
ivf_check_clean($node, 'postgres', $_, "(c) $_: no problem after outliers and VACUUM")
  for @indexes;

# (a) radii too small, negative, NaN
my %file = map { $_ => relation_file($node, 'postgres', $_) } @indexes;
$node->stop;
my @l2 = nonempty_lists($file{t_l2}, 3);
my @ip = nonempty_lists($file{t_ip}, 1);
my @wl = nonempty_lists($file{w_l2}, 1);
write_file_bytes($file{t_l2}, $l2[0][1], pack('f', 0));
write_file_bytes($file{t_l2}, $l2[1][1], pack('f', -1));
write_file_bytes($file{t_l2}, $l2[2][1], pack('L', 0x7FC00000));    # NaN
write_file_bytes($file{t_ip}, $ip[0][1], pack('f', 0));
write_file_bytes($file{w_l2}, $wl[0][1], pack('f', 0));
$node->start;

sub radius_below
{
	my ($index, $entry) = @_;
	my ($list, undef, $radius) = @$entry;
	my @rows = check_rows($index);
	is(scalar(@rows), 1, "(a) $index: one problem for list $list") or diag(join("\n", @rows));
	like($rows[0] // '',
		qr/^list $list: radius 0 is below the distance ([0-9.e+-]+) of its member at block \d+ slot \d+ to the centroid$/,
		"(a) $index: list ${list}'s radius 0 is reported");
	# the farthest member is within the radius that was stored (which
	# VACUUM did not lower after the deletes)
	my ($dist) = ($rows[0] // '') =~ /the distance (\S+) of/;
	ok(defined $dist && $dist > 0 && $dist <= $radius * (1 + 1e-6),
		"(a) $index: the distance reported (" . ($dist // 'none')
		  . ") is positive and within the radius that was stored ($radius)");
	return;
}

{
	my @rows = check_rows('t_l2');
	is(scalar(@rows), 3, '(a) t_l2: three problems') or diag(join("\n", @rows));
	my ($list0, $list1, $list2) = map { $_->[0] } @l2;
	ok((grep { /^list $list0: radius 0 is below the distance [0-9.e+-]+ of its member at block \d+ slot \d+ to the centroid$/ } @rows),
		"(a) t_l2: list ${list0}'s radius 0 is reported");
	ok((grep { /^list $list1: radius -1 is negative or NaN$/ } @rows),
		"(a) t_l2: list ${list1}'s negative radius is reported");
	ok((grep { /^list $list2: radius -?nan is negative or NaN$/i } @rows),
		"(a) t_l2: list ${list2}'s NaN radius is reported");
}
radius_below('t_ip', $ip[0]);
radius_below('w_l2', $wl[0]);
ivf_check_clean($node, 'postgres', 't_cos', '(a) t_cos: untouched, no problem');

# (b) a format version 1 meta page: refused everywhere, REINDEX repairs
$node->stop;
write_file_bytes($file{t_l2}, $meta_version, pack('L', 1));
$node->start;

my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
my $scan = q{SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]' LIMIT 5};
my $version_error =
  qr/index "t_l2" has format version 1, this build reads versions? [\d to]+.*HINT:\s+REINDEX the index/s;
my ($rc, $out, $err) = $node->psql('postgres', "$noseq $scan");
isnt($rc, 0, '(b) a scan of a version 1 index fails');
like($err, $version_error, '(b) the scan says format version 1 and REINDEX');
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM ivf_check('t_l2')");
isnt($rc, 0, '(b) ivf_check of a version 1 index fails');
like($err, $version_error, '(b) ivf_check says format version 1 and REINDEX');
($rc, $out, $err) = $node->psql('postgres', q{INSERT INTO t VALUES (20000, '[1,2,3,4,5,6,7,8]')});
isnt($rc, 0, '(b) an insert into a version 1 index fails');
like($err, $version_error, '(b) the insert says format version 1 and REINDEX');

$node->safe_psql('postgres', 'REINDEX INDEX t_l2');
ivf_check_clean($node, 'postgres', 't_l2', '(b) t_l2 after REINDEX: no problem');
my $exact = $node->safe_psql('postgres',
	q{SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '[1,1,1,1,1,1,1,1]', id LIMIT 5) x});
is( $node->safe_psql('postgres',
		"$noseq SET ivf.nprobe = 4; SELECT string_agg(id::text, ',') FROM ($scan) x"),
	$exact, '(b) t_l2 after REINDEX: a scan of every list returns the exact nearest rows');
my ($uses) = uses_index($node, 'postgres', $noseq, $scan, 't_l2');
is($uses, 1, '(b) that scan uses t_l2');

# (d) versions 3 and 2 are still read: the same index built as format 3,
# then written as version 2 (REINDEX gives it a new file each time)
$file{t_l2} = relation_file($node, 'postgres', 't_l2');
$node->stop;
is(unpack('L', read_file_bytes($file{t_l2}, $meta_version, 4)), 4, '(d) new indexes are format version 4');
$node->start;
$node->safe_psql('postgres', 'SET ivf.build_format = 3; REINDEX INDEX t_l2');
$file{t_l2} = relation_file($node, 'postgres', 't_l2');
$node->stop;
is(unpack('L', read_file_bytes($file{t_l2}, $meta_version, 4)), 3, '(d) ivf.build_format = 3 builds format version 3');
is(unpack('L', read_file_bytes($file{t_l2}, $meta_elem, 4)), 0, '(d) a vector index has element type 0 (float)');
$node->start;
ivf_check_clean($node, 'postgres', 't_l2', '(d) a version 3 index: no problem');
is( $node->safe_psql('postgres',
		"$noseq SET ivf.nprobe = 4; SELECT string_agg(id::text, ',') FROM ($scan) x"),
	$exact, '(d) a version 3 index returns the exact nearest rows');
is($node->safe_psql('postgres', q{SELECT prefilter FROM ivf_index_info('t_l2')}), 't',
	'(d) the version 3 index has codes');
$node->safe_psql('postgres', q{INSERT INTO t VALUES (20002, '[1,1,1,1,1,1,1,1]')});
is( $node->safe_psql('postgres', "$noseq SET ivf.nprobe = 4; SELECT id FROM ($scan) x LIMIT 1"),
	'20002', '(d) an insert into a version 3 index is found');
$node->safe_psql('postgres', 'DELETE FROM t WHERE id = 20002; VACUUM t');
ivf_check_clean($node, 'postgres', 't_l2', '(d) a version 3 index after insert and VACUUM: no problem');
$node->stop;
write_file_bytes($file{t_l2}, $meta_version, pack('L', 2));
$node->start;
ivf_check_clean($node, 'postgres', 't_l2', '(d) a version 2 index: no problem');
is( $node->safe_psql('postgres',
		"$noseq SET ivf.nprobe = 4; SELECT string_agg(id::text, ',') FROM ($scan) x"),
	$exact, '(d) a version 2 index returns the exact nearest rows');
$node->safe_psql('postgres', q{INSERT INTO t VALUES (20001, '[1,1,1,1,1,1,1,1]')});
is( $node->safe_psql('postgres', "$noseq SET ivf.nprobe = 4; SELECT id FROM ($scan) x LIMIT 1"),
	'20001', '(d) an insert into a version 2 index is found');

$node->stop;
write_file_bytes($file{t_l2}, $meta_elem, pack('L', 1));
$node->start;
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM ivf_check('t_l2')");
isnt($rc, 0, '(d) a version 2 index naming the half element type is refused');
like($err, qr/index "t_l2" has an invalid element type 1.*format version 2/s,
	'(d) the error names the element type and the version');
$node->stop;
write_file_bytes($file{t_l2}, $meta_version, pack('L', 3));
write_file_bytes($file{t_l2}, $meta_elem, pack('L', 7));
$node->start;
($rc, $out, $err) = $node->psql('postgres', "$noseq $scan");
isnt($rc, 0, '(d) an unknown element type is refused');
like($err, qr/index "t_l2" has an invalid element type 7/, '(d) the scan names it');
$node->safe_psql('postgres', 'REINDEX INDEX t_l2');
ivf_check_clean($node, 'postgres', 't_l2', '(d) t_l2 after REINDEX: no problem');

# (e) format 4's list slots, on t_cos (4 lists, never written to since (a))
sub entry_off
{
	my ($file, $list) = @_;
	my ($dirstart) = unpack('L', read_file_bytes($file, $meta_dirstart, 4));
	return $dirstart * $blcksz + $contents + $list * $entry_size;
}
my $cos = q{SELECT id FROM t ORDER BY v <=> '[1,1,1,1,1,1,1,1]' LIMIT 5};
my $cos_rows = $node->safe_psql('postgres', "$noseq SET ivf.nprobe = 4; $cos");
my ($uses_cos) = uses_index($node, 'postgres', $noseq, $cos, 't_cos');
is($uses_cos, 1, '(e) the cosine scan uses t_cos');
$node->stop;
my $e0 = entry_off($file{t_cos}, 0);
my $e1 = entry_off($file{t_cos}, 1);
is(unpack('L', read_file_bytes($file{t_cos}, $meta_version, 4)), 4, '(e) t_cos is format 4');
is(unpack('L', read_file_bytes($file{t_cos}, $e0 + $entry_dead, 4)), 0xFFFFFFFF, '(e) list 0 is not retired');
write_file_bytes($file{t_cos}, $e0 + $entry_dead, pack('L', 1));
$node->start;
{
	# a retired list must be frozen whole, and the live lists are nlists
	my @rows = check_rows('t_cos');
	is(scalar(@rows), 2, '(e) a slot dead at the generation: two problems') or diag(join("\n", @rows));
	ok((grep { /^list 0: retired at generation 1 \(dead 1\) with unfrozen groups: \d+, the first at block \d+$/ } @rows),
		'(e) a slot dead at the generation is a retired list, reported unfrozen');
	ok((grep { /^meta page: 4 lists, but 3 list slots are live at generation 1$/ } @rows),
		'(e) and the meta page counts a list more than are live');
}
$node->stop;
write_file_bytes($file{t_cos}, $e0 + $entry_dead, pack('L', 0xFFFFFFFF));
write_file_bytes($file{t_cos}, $e1 + $entry_incarnation, pack('S', 1));
$node->start;
{
	my @rows = check_rows('t_cos');
	# heads by their label, float pages as not the list's
	ok((grep { /^list 1: block \d+ is labelled list id 0x00000001, the list's is 0x00010001$/ } @rows)
		  && !(grep { !/^list 1: / } @rows),
		'(e) pages of an earlier incarnation are reported, in list 1 only') or diag(join("\n", @rows));
	($rc, $out, $err) = $node->psql('postgres', "$noseq SET ivf.nprobe = 4; $cos");
	isnt($rc, 0, '(e) a scan reaching them fails');
	like($err, qr/block \d+ is not a page of list 65537/, '(e) it names the list id');
}
$node->stop;
write_file_bytes($file{t_cos}, $e1 + $entry_incarnation, pack('S', 0));
write_file_bytes($file{t_cos}, $e0 + $entry_crow, pack('L', 999));
$node->start;
($rc, $out, $err) = $node->psql('postgres', "$noseq $cos");
isnt($rc, 0, '(e) a centroid row past its page is refused');
like($err, qr/list slot 0 names centroid row 999 of block \d+, which holds \d+ floats/,
	'(e) the error names the slot and the row');
$node->stop;
write_file_bytes($file{t_cos}, $e0 + $entry_crow, pack('L', 0));
is(unpack('L', read_file_bytes($file{t_cos}, $meta_nslots, 4)), 4, '(e) t_cos has 4 list slots');
write_file_bytes($file{t_cos}, $meta_nslots, pack('L', 5));
$node->start;
($rc, $out, $err) = $node->psql('postgres', "$noseq $cos");
isnt($rc, 0, '(e) a slot past the entries written (all zero) is refused');
like($err, qr/index "t_cos": list slot 4 names no centroid page \(block 0\)/,
	'(e) the error names the slot');
$node->stop;
# the same slot, free (never born, no pages): the lists read as before
my $e4 = entry_off($file{t_cos}, 4);
write_file_bytes($file{t_cos}, $e4, pack('LLL', 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF));
write_file_bytes($file{t_cos}, $e4 + $entry_born, pack('LL', 0xFFFFFFFF, 0xFFFFFFFF));
$node->start;
is($node->safe_psql('postgres', "$noseq SET ivf.nprobe = 4; $cos"), $cos_rows,
	'(e) a free fifth slot: the same rows');
$node->stop;
write_file_bytes($file{t_cos}, $e4, "\0" x $entry_size);
write_file_bytes($file{t_cos}, $meta_nslots, pack('L', 4));
$node->start;
ivf_check_clean($node, 'postgres', 't_cos', '(e) t_cos restored: no problem');
is($node->safe_psql('postgres', "$noseq SET ivf.nprobe = 4; $cos"), $cos_rows,
	'(e) t_cos restored: the same rows');

$node->stop;
done_testing();
