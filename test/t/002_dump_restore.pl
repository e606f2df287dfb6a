# pg_dump / restore of vector columns (plain and custom format), and restoring
# a pgvector database dump into a database that uses ivf instead.
#
# Run by test/run_all.sh (prove as the postgres OS user), or by hand like
# test/t/001_copy_binary.pl.  IVF_TEST_DIR (set by run_all.sh) is the folder
# holding t/ and fixtures/; by default it is the folder above this file.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $testdir = $ENV{IVF_TEST_DIR} || "$FindBin::RealBin/..";
my $fixture = "$testdir/fixtures/pgvector_dump.sql";

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->start;
my $dir = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION ivf');
$node->safe_psql(
	'src', q{
CREATE TABLE items (
    id bigint PRIMARY KEY,
    embedding vector(3),
    free vector,
    arr vector[]
);
INSERT INTO items VALUES
  (1, '[1,2,3]', '[1.5]', ARRAY['[1,2]', '[3,4,5]']::vector[]),
  (2, '[-0,0,-0]', '[1.4e-45,-1.4e-45,1e-40,3.4028235e38,-1.17549435e-38]', '{}'),
  (3, NULL, NULL, NULL),
  (4, '[0.1,0.2,0.3]', '[0.1,0.2,0.3,0.4]', ARRAY[NULL, '[0.1]']::vector[]),
  (5, '[1e-07,-123456.79,3.4028235e38]', NULL, ARRAY['[-0]']::vector[]);
INSERT INTO items
  SELECT 100 + i, format('[%s,%s,%s]', i, i * 0.1, -i / 7.0)::vector,
         format('[%s]', i / 3.0)::vector, NULL
  FROM generate_series(1, 200) i;
});

# One canonical line per row: vector_send() hex of every value (array
# elements one by one: array_send would embed the element type's OID, which
# differs between databases).
sub snapshot
{
	my ($db, $table) = @_;
	$table //= 'items';
	return $node->safe_psql(
		$db, qq{
SELECT id,
       coalesce(encode(vector_send(embedding), 'hex'), 'NULL'),
       coalesce(encode(vector_send(free), 'hex'), 'NULL'),
       CASE WHEN arr IS NULL THEN 'NULL' ELSE
         '{' || coalesce((SELECT string_agg(coalesce(encode(vector_send(e), 'hex'), 'NULL'), ',' ORDER BY o)
                          FROM unnest(arr) WITH ORDINALITY AS u(e, o)), '') || '}' END
FROM $table ORDER BY id});
}

sub column_types
{
	my ($db) = @_;
	return $node->safe_psql(
		$db, q{
SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attnum > 0 AND NOT attisdropped});
}

my $orig = snapshot('src');
my $ntotal = 205;
my @orig_lines = split /\n/, $orig;
is(scalar(@orig_lines), $ntotal, 'source rows');
is(column_types('src'),
	'id bigint, embedding vector(3), free vector, arr vector[]',
	'source column types');

# ---- plain format ----
my $plain = "$dir/src.sql";
$node->command_ok([ 'pg_dump', '-d', 'src', '-f', $plain ], 'pg_dump plain');
like(slurp_file($plain), qr/^CREATE EXTENSION IF NOT EXISTS ivf WITH SCHEMA public;$/m,
	'plain dump creates the extension');
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f', $plain ],
	'restore plain dump with psql');
is(snapshot('dst_plain'), $orig, 'plain dump/restore: all values bit-for-bit equal');
is(column_types('dst_plain'), column_types('src'), 'plain dump/restore: typmods kept');

# ---- custom format ----
my $custom = "$dir/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'src', '-f', $custom ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst_custom');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'dst_custom', $custom ],
	'pg_restore custom dump');
is(snapshot('dst_custom'), $orig, 'custom dump/restore: all values bit-for-bit equal');
is(column_types('dst_custom'), column_types('src'), 'custom dump/restore: typmods kept');

# ---- data only, binary-safe text COPY into an existing table ----
my $dataonly = "$dir/data.sql";
$node->command_ok([ 'pg_dump', '--data-only', '-t', 'items', '-d', 'src', '-f', $dataonly ],
	'pg_dump --data-only');
$node->safe_psql('postgres', 'CREATE DATABASE dst_data');
$node->safe_psql('dst_data',
	'CREATE EXTENSION ivf; CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), free vector, arr vector[])'
);
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_data', '-f', $dataonly ],
	'restore data-only dump');
is(snapshot('dst_data'), $orig, 'data-only dump/restore: bit-for-bit equal');

# ---- a pgvector dump restored into ivf ----
ok(-r $fixture, "fixture $fixture readable");
my $filtered = "$dir/pgvector_dump.filtered.sql";
my $grep_ok = IPC::Run::run(
	[ 'grep', '-v', '-E', '^(CREATE EXTENSION|COMMENT ON EXTENSION).*\bvector\b', $fixture ],
	'>', $filtered);
ok($grep_ok, 'grep removed the vector extension lines');
my $ftext = slurp_file($filtered);
unlike($ftext, qr/^(CREATE|COMMENT ON) EXTENSION/m, 'no extension statements left');
like($ftext, qr/^CREATE TABLE public\.items/m, 'table definition kept');

$node->safe_psql('postgres', 'CREATE DATABASE pgv');
$node->safe_psql('pgv', 'CREATE EXTENSION ivf');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'pgv', '-f', $filtered ],
	'pgvector dump restores into a database with ivf');

is($node->safe_psql('pgv', 'SELECT count(*), count(embedding) FROM public.items'),
	'6|5', 'pgvector dump: 6 rows, 5 non-NULL');
is( $node->safe_psql(
		'pgv', q{
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'public.items'::regclass AND attname = 'embedding'}),
	'vector(3)',
	'pgvector dump: column is vector(3)');
is( $node->safe_psql(
		'pgv', q{
SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.items'::regclass AND contype = 'p'}),
	1,
	'pgvector dump: primary key restored');
is( $node->safe_psql(
		'pgv', q{SELECT id || ':' || encode(vector_send(embedding), 'hex') FROM public.items
		 WHERE id IN (5, 6) ORDER BY id}),
	"5:00030000" . "3dcccccd" . "80000000" . "42c90000" . "\n"
	  . "6:00030000" . "00000001" . "7f7fffff" . "c0000000",
	'pgvector dump: exact float bits (0.1, -0, 100.5, 1e-45, FLT_MAX, -2)');

# Distances to [1,2,3], against float32 inputs computed in double here.
my %fixture_rows = (
	1 => [ 1,    2,    3 ],
	2 => [ 4,    5,    6 ],
	3 => [ -1.5, 0.25, 1e-07 ],
	5 => [ 0.1,  -0.0, 100.5 ],
);
my @q = (1, 2, 3);
sub f32 { return unpack('f', pack('f', $_[0])); }

my $got = $node->safe_psql(
	'pgv', q{
SELECT id, embedding <-> '[1,2,3]', embedding <#> '[1,2,3]', embedding <=> '[1,2,3]'
FROM public.items WHERE id IN (1, 2, 3, 5) ORDER BY id});
my %got = map { my @c = split /\|/; ($c[0] => [ @c[ 1 .. 3 ] ]) } split /\n/, $got;
for my $id (sort keys %fixture_rows)
{
	my @v = map { f32($_) } @{ $fixture_rows{$id} };
	my ($l2, $dot, $na, $nb) = (0, 0, 0, 0);
	for my $i (0 .. 2)
	{
		$l2  += ($v[$i] - $q[$i])**2;
		$dot += $v[$i] * $q[$i];
		$na  += $v[$i]**2;
		$nb  += $q[$i]**2;
	}
	my @want = (sqrt($l2), -$dot, 1 - $dot / sqrt($na * $nb));
	my @names = ('<->', '<#>', '<=>');
	for my $k (0 .. 2)
	{
		my $g = $got{$id}[$k];
		my $ok = defined $g && abs($g - $want[$k]) <= 1e-5 * (1 + abs($want[$k]));
		ok($ok, "pgvector dump: row $id $names[$k] [1,2,3] = $want[$k]")
		  or diag("got " . ($g // 'undef'));
	}
}
is( $node->safe_psql(
		'pgv', q{SELECT string_agg(id::text, ',' ORDER BY embedding <-> '[1,2,3]', id)
		 FROM public.items WHERE id <> 6 AND embedding IS NOT NULL}),
	'1,3,2,5',
	'pgvector dump: ORDER BY <-> gives the expected order');

# pgvector's ivfflat indexes in the dump are rebuilt by ivf's access method
is( $node->safe_psql(
		'pgv', q{SELECT string_agg(c.relname || ':' || am.amname || ':' || i.indisvalid, ',' ORDER BY c.relname)
		 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
		 WHERE i.indrelid = 'public.items'::regclass AND NOT i.indisprimary}),
	'items_embedding_idx:ivfflat:true,items_embedding_idx1:ivfflat:true',
	'pgvector dump: ivfflat indexes restored and valid');
is( $node->safe_psql(
		'pgv', q{SELECT count(*) FROM ivf_check('public.items_embedding_idx')}),
	0, 'pgvector dump: restored l2 index is sound');
is( $node->safe_psql(
		'pgv', q{SET enable_seqscan = off; SET ivfflat.probes = 2;
		 SELECT string_agg(id::text, ',') FROM
		 (SELECT id FROM public.items WHERE id <> 6 ORDER BY embedding <-> '[1,2,3]' LIMIT 4) s}),
	'1,3,2,5',
	'pgvector dump: index scan with ivfflat.probes gives the same order');
like( $node->safe_psql(
		'pgv', q{SET enable_seqscan = off;
		 EXPLAIN (COSTS OFF) SELECT id FROM public.items ORDER BY embedding <=> '[1,2,3]' LIMIT 2}),
	qr/Index Scan using items_embedding_idx1/,
	'pgvector dump: cosine index used');

$node->stop;
done_testing();
