# ivf's halfvec against pgvector's, in one cluster: db1 has pgvector
# (CREATE EXTENSION vector), db2 has ivf.  The same values, as text
# literals, from vector, and from real[], must print the same text and
# send the same bytes (halfvec_send) in both; a table dumped from db1 with
# COPY BINARY must load into db2 and print the same.  Then the guard of
# ivf's install script: CREATE EXTENSION ivf in db1 fails before creating
# anything, with a hint naming ivf_pgvector.
#
# Needs pgvector installed in the same PostgreSQL (as t/023); skipped
# without it.
use strict;
use warnings;

use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('halfvec_pgvector');
$node->init;
$node->start;

my $pgvector = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'vector'});
if ($pgvector eq '')
{
	$node->stop;
	plan skip_all => 'pgvector is not installed in this PostgreSQL '
	  . '(test/lib/install-pgvector.sh builds it from ../shared/vendor)';
}
note "pgvector $pgvector";

$node->safe_psql('postgres', 'CREATE DATABASE db1');
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('db1', 'CREATE EXTENSION vector');
$node->safe_psql('db2', 'CREATE EXTENSION ivf');

# values: edge cases of half precision and random ones of every exponent
my @values = (
	'0', '-0', '1', '-1', '0.1', '0.333333', '65504', '-65504', '65519.99',
	'6.1035156e-05', '6.0975552e-05', '5.9604645e-08', '2.9802322e-08',
	'4.4703484e-08', '1e-08', '2049', '2051', '1.00048828125', '3.14159265',
	'1e4', '-12345.678', '0.00011', '1e-5', '-7.6e-6', '32768', '32784', '32800');
srand(31);
for (1 .. 200)
{
	my $e = int(rand(40)) - 24;
	push @values, sprintf('%.9g', (rand(2) - 1) * 2**$e);
}

my @literals;
for (my $i = 0; $i < @values; $i += 7)
{
	my $j = $i + 6 < $#values ? $i + 6 : $#values;
	push @literals, '[' . join(',', @values[ $i .. $j ]) . ']';
}
push @literals, '[' . join(',', @values) . ']';

sub both
{
	my ($sql, $name) = @_;
	my $a = $node->safe_psql('db1', $sql);
	my $b = $node->safe_psql('db2', $sql);
	is($b, $a, $name);
	return $a;
}

for my $lit (@literals)
{
	my $short = length($lit) > 60 ? substr($lit, 0, 57) . '...' : $lit;
	both("SELECT '$lit'::halfvec", "text $short");
	both("SELECT halfvec_send('$lit')", "send bytes $short");
	both("SELECT '$lit'::vector::halfvec", "from vector $short");
	both("SELECT halfvec_send(('$lit'::vector)::real[]::halfvec)", "from real[] $short");
	both("SELECT '$lit'::halfvec::vector", "to vector $short");
	both("SELECT '$lit'::halfvec::real[]", "to real[] $short");
}

# arithmetic and functions that round to half
both(q{SELECT '[0.1,1000,-3.3]'::halfvec + '[0.2,0.7,1e-3]', '[0.1,1000,-3.3]'::halfvec - '[0.2,0.7,1e-3]',
	'[0.1,1000,-3.3]'::halfvec * '[0.2,0.7,1e-3]'}, 'arithmetic');
both(q{SELECT l2_normalize('[3,4,0.001]'::halfvec), subvector('[1,2,3,4]'::halfvec, 2, 2),
	'[1,2]'::halfvec || '[3]'::halfvec, vector_dims('[1,2,3]'::halfvec), l2_norm('[3,4]'::halfvec)},
	'functions');
both(q{SELECT avg(v), sum(v) FROM (VALUES ('[0.1,2,3]'::halfvec), ('[0.2,4,5.5]'), ('[0.4,1,1]')) t(v)},
	'aggregates');
both(q{SELECT '[1,2,3]'::halfvec < '[1,2,4]', '[-0]'::halfvec = '[0]', '[1,2]'::halfvec < '[1,2,3]'},
	'comparisons');
both(q{SELECT l2_distance('[1,2,3]'::halfvec, '[3,2,1]'), inner_product('[1,2,3]'::halfvec, '[3,2,1]'),
	round(cosine_distance('[1,2,3]'::halfvec, '[3,2,1]')::numeric, 12), l1_distance('[1,2,3]'::halfvec, '[3,2,1]')},
	'distances');

# the same error messages (ivf adds a detail)
for my $bad ('[65520]', '[1,NaN]', '[Infinity]', '[]', '[1,a]', '1,2')
{
	my ($rc1, $out1, $err1) = $node->psql('db1', "SELECT '$bad'::halfvec");
	my ($rc2, $out2, $err2) = $node->psql('db2', "SELECT '$bad'::halfvec");
	my ($m1) = $err1 =~ /ERROR:\s+(.*)/;
	my ($m2) = $err2 =~ /ERROR:\s+(.*)/;
	ok($rc1 != 0 && $rc2 != 0, "$bad refused by both");
	is($m2, $m1, "$bad: the same message");
}

# COPY BINARY out of pgvector's table, into ivf's
my $tmp = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir);
my $file = "$tmp/halfvec.copy";
$node->safe_psql('db1',
	"CREATE TABLE h (id int, v halfvec);"
	  . join('', map { "INSERT INTO h VALUES ($_, '$literals[$_]');" } 0 .. $#literals)
	  . "COPY h TO '$file' (FORMAT binary);");
$node->safe_psql('db2', "CREATE TABLE h (id int, v halfvec); COPY h FROM '$file' (FORMAT binary);");
is( $node->safe_psql('db2', 'SELECT string_agg(v::text, E\'\n\' ORDER BY id) FROM h'),
	$node->safe_psql('db1', 'SELECT string_agg(v::text, E\'\n\' ORDER BY id) FROM h'),
	'COPY BINARY from pgvector loads the same halfvecs');

# the guard: CREATE EXTENSION ivf beside pgvector
my ($rc, $out, $err) = $node->psql('db1', 'CREATE EXTENSION ivf');
isnt($rc, 0, 'CREATE EXTENSION ivf fails in a pgvector database');
like($err, qr/cannot be installed beside pgvector's extension "vector"/, 'the error says why');
like($err, qr/HINT:.*CREATE EXTENSION ivf_pgvector/, 'the hint names ivf_pgvector');
is( $node->safe_psql('db1',
		q{SELECT count(*) FROM pg_proc WHERE probin = '$libdir/ivf'}),
	'0', 'nothing of ivf was created');
is($node->safe_psql('db1', q{SELECT count(*) FROM pg_am WHERE amname = 'ivf'}), '0', 'no access method ivf');
is($node->safe_psql('db1', q{SELECT '[1,2]'::halfvec}), '[1,2]', 'pgvector still works');

# a type named vector that is not pgvector's is refused too
$node->safe_psql('postgres', 'CREATE DATABASE db3');
$node->safe_psql('db3', 'CREATE TYPE vector AS (x int)');
($rc, $out, $err) = $node->psql('db3', 'CREATE EXTENSION ivf');
isnt($rc, 0, 'CREATE EXTENSION ivf fails beside another type vector');
like($err, qr/type public\.vector already exists/, 'and names the type');

$node->stop;
done_testing();
