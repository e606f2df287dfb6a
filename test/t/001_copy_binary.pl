# COPY round trips of the vector type, binary and text, bit for bit.
#
# Run by test/run_all.sh (as the postgres OS user), or by hand as a user
# other than root:  make prove_installcheck PROVE_TESTS=test/t/001_copy_binary.pl
# (the extension must be installed: make install)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('copy_binary');
$node->init;
$node->start;

my $dir = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE EXTENSION ivf');

# A 16000-dimension vector (VECTOR_MAX_DIM) with varied values printed with
# 9 significant digits, which round-trips any float32 exactly.
my $big = '['
  . join(',', map { sprintf('%.9g', sin($_) * (10**(($_ % 13) - 6))) } 1 .. 16000)
  . ']';

# id => [text literal, expected vector_send() hex or undef]
my %rows = (
	1  => [ '[1,2,3]', '000300003f8000004000000040400000' ],
	2  => [ '[-0,0,-0.0]', '0003000080000000' . '00000000' . '80000000' ],
	3  => [ '[1.4e-45,-1.4e-45,1e-40]', '00030000' . '00000001' . '80000001' . '000116c2' ],
	4  => [ '[3.4028235e38,-3.4028235e38]', '00020000' . '7f7fffff' . 'ff7fffff' ],
	5  => [ '[-1.17549435e-38]', '00010000' . '80800000' ],
	6  => [ '[0.1]', '00010000' . '3dcccccd' ],
	7  => [ '[42]', '00010000' . '42280000' ],
	8  => [ $big, undef ],
	9  => [ '[1e-45,2.3509886e-38,1.17549421e-38,0.99999994,1.00000012,16777217]', undef ],
	10 => [ '[-7.5,1000000,-0.000123456789,123456789]', undef ],
);

$node->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v vector)');
for my $id (sort { $a <=> $b } keys %rows)
{
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($id, '$rows{$id}[0]')");
}
$node->safe_psql('postgres', 'INSERT INTO t VALUES (11, NULL)');
my $nrows = 11;

is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $nrows, 'rows inserted');
is($node->safe_psql('postgres', 'SELECT vector_dims(v) FROM t WHERE id = 8'),
	16000, '16000-dimension vector stored');

# The input itself is exact: known bit patterns.
for my $id (sort { $a <=> $b } keys %rows)
{
	next unless defined $rows{$id}[1];
	is( $node->safe_psql(
			'postgres', "SELECT encode(vector_send(v), 'hex') FROM t WHERE id = $id"),
		$rows{$id}[1],
		"vector_send of $rows{$id}[0]");
}

# Compare two tables row by row on the exact wire representation.
sub compare_tables
{
	my ($a, $b, $what) = @_;
	is($node->safe_psql('postgres', "SELECT count(*) FROM $b"), $nrows, "$what: row count");
	is( $node->safe_psql(
			'postgres', qq{
		SELECT count(*) FROM $a FULL JOIN $b USING (id)
		WHERE $a.id IS NULL OR $b.id IS NULL
		   OR vector_send($a.v) IS DISTINCT FROM vector_send($b.v)}),
		0,
		"$what: every row bit-for-bit equal (vector_send)");
	is( $node->safe_psql(
			'postgres', "SELECT count(*) FROM $b WHERE v IS NULL"),
		1, "$what: NULL preserved");
}

# ---- binary COPY, server-side file ----
my $binfile = "$dir/t.bin";
$node->safe_psql('postgres', "COPY t TO '$binfile' (FORMAT binary)");
ok(-s $binfile, 'binary COPY TO wrote a file');
$node->safe_psql('postgres', 'CREATE TABLE t2 (id int PRIMARY KEY, v vector)');
$node->safe_psql('postgres', "COPY t2 FROM '$binfile' (FORMAT binary)");
compare_tables('t', 't2', 'binary COPY');

# ---- text COPY ----
my $txtfile = "$dir/t.txt";
$node->safe_psql('postgres', "COPY t TO '$txtfile'");
$node->safe_psql('postgres', 'CREATE TABLE t3 (id int PRIMARY KEY, v vector)');
$node->safe_psql('postgres', "COPY t3 FROM '$txtfile'");
compare_tables('t', 't3', 'text COPY');

# ---- CSV COPY (the literal contains commas, so it gets quoted) ----
my $csvfile = "$dir/t.csv";
$node->safe_psql('postgres', "COPY t TO '$csvfile' (FORMAT csv)");
$node->safe_psql('postgres', 'CREATE TABLE t4 (id int PRIMARY KEY, v vector)');
$node->safe_psql('postgres', "COPY t4 FROM '$csvfile' (FORMAT csv)");
compare_tables('t', 't4', 'CSV COPY');

# ---- binary COPY into a typmod column ----
$node->safe_psql('postgres', 'CREATE TABLE t5 (id int, v vector(3))');
$node->safe_psql('postgres',
	"COPY (SELECT id, v FROM t WHERE id IN (1, 2, 3)) TO '$dir/t3d.bin' (FORMAT binary)");
$node->safe_psql('postgres', "COPY t5 FROM '$dir/t3d.bin' (FORMAT binary)");
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM t5 JOIN t USING (id) WHERE vector_send(t5.v) = vector_send(t.v)}),
	3,
	'binary COPY into vector(3) keeps the bits');
$node->safe_psql('postgres', 'CREATE TABLE t6 (id int, v vector(2))');
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', "COPY t6 FROM '$dir/t3d.bin' (FORMAT binary)");
isnt($ret, 0, 'binary COPY of 3-d vectors into vector(2) fails');
like($stderr, qr/expected 2 dimensions, not 3/, '... with the dimension error');

# ---- the bytes on the wire for [1,2,3] ----
my $onefile = "$dir/one.bin";
$node->safe_psql('postgres',
	"COPY (SELECT v FROM t WHERE id = 1) TO '$onefile' (FORMAT binary)");
my $bytes = slurp_file($onefile);
my $sig = "PGCOPY\n\377\r\n\0";
is(substr($bytes, 0, 11), $sig, 'binary COPY signature');
my ($flags, $extlen) = unpack('N N', substr($bytes, 11, 8));
my $pos = 19 + $extlen;
my ($nfields, $flen) = unpack('n N', substr($bytes, $pos, 6));
is($nfields, 1, 'one field in the tuple');
is($flen, 16, 'field length 16 = int16 dim + int16 unused + 3 float4');
my $field = substr($bytes, $pos + 6, $flen);
my ($dim, $unused, @f) = unpack('n n N3', $field);
is($dim,    3, 'int16 dim = 3 (big-endian)');
is($unused, 0, 'int16 unused = 0');
is(join(' ', map { sprintf('%08x', $_) } @f),
	'3f800000 40000000 40400000', 'float4s big-endian: 1, 2, 3');
is(unpack('H*', $field), '000300003f8000004000000040400000', 'whole field bytes');
is(unpack('s>', substr($bytes, $pos + 6 + $flen, 2)), -1, 'trailer follows');
is(length($bytes), $pos + 6 + $flen + 2, 'nothing after the trailer');

# ---- binary input that is not canonical is rejected ----
# Same file with unused = 1: vector_recv must refuse it.
my $bad = $bytes;
substr($bad, $pos + 6 + 2, 2) = pack('n', 1);
open(my $fh, '>', "$dir/bad.bin") or die "open: $!";
binmode $fh;
print $fh $bad;
close $fh;
$node->safe_psql('postgres', 'CREATE TABLE t7 (v vector)');
($ret, $stdout, $stderr) =
  $node->psql('postgres', "COPY t7 FROM '$dir/bad.bin' (FORMAT binary)");
isnt($ret, 0, 'binary input with unused != 0 is rejected');

$node->stop;
done_testing();
